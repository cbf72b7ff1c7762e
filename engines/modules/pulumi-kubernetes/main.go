// The Kubernetes resource provider, served the way upstream's cmd/pulumi-resource-kubernetes serves it.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

// Written by the toolchain from the provider module's committed schema.json (never committed here).
//
//go:embed schema-embed.json
var pulumiSchema []byte

// Written by the toolchain from the provider module's committed terraform-mapping.json.
//
//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
