/** Formats rows as an aligned plain-text table (also valid as a markdown table when `markdown`). */
export function formatTable(headers: string[], rows: Array<Array<string | number>>, options: { markdown?: boolean } = {}): string {
    const cells = [headers, ...rows.map((r) => r.map(String))];
    const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
    const line = (r: string[]) => (options.markdown ? `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |` : r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
    const rule = options.markdown ? `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|` : widths.map((w) => "-".repeat(w)).join("  ");
    return [line(headers), rule, ...cells.slice(1).map(line)].join("\n") + "\n";
}
