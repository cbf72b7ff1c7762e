package main

// sprigFuncs: the keys of sprig v3.3.0's TxtFuncMap (functions.go, genericMap), the sprig
// version Argo CD v3.4.7 pins in go.mod. Names only: the parser needs to know they exist.
var sprigFuncs = []string{
	"abbrev", "abbrevboth", "add", "add1", "add1f", "addf", "adler32sum", "ago",
	"all", "any", "append", "atoi", "b32dec", "b32enc", "b64dec", "b64enc",
	"base", "bcrypt", "biggest", "buildCustomCert", "camelcase", "cat", "ceil", "chunk",
	"clean", "coalesce", "compact", "concat", "contains", "date", "dateInZone", "dateModify",
	"date_in_zone", "date_modify", "decryptAES", "deepCopy", "deepEqual", "default", "derivePassword", "dict",
	"dig", "dir", "div", "divf", "duration", "durationRound", "empty", "encryptAES",
	"env", "expandenv", "ext", "fail", "first", "float64", "floor", "fromJson",
	"genCA", "genCAWithKey", "genPrivateKey", "genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert", "genSignedCertWithKey", "get",
	"getHostByName", "has", "hasKey", "hasPrefix", "hasSuffix", "hello", "htmlDate", "htmlDateInZone",
	"htpasswd", "indent", "initial", "initials", "int", "int64", "isAbs", "join",
	"kebabcase", "keys", "kindIs", "kindOf", "last", "list", "lower", "max",
	"maxf", "merge", "mergeOverwrite", "min", "minf", "mod", "mul", "mulf",
	"mustAppend", "mustChunk", "mustCompact", "mustDateModify", "mustDeepCopy", "mustFirst", "mustFromJson", "mustHas",
	"mustInitial", "mustLast", "mustMerge", "mustMergeOverwrite", "mustPrepend", "mustRegexFind", "mustRegexFindAll", "mustRegexMatch",
	"mustRegexReplaceAll", "mustRegexReplaceAllLiteral", "mustRegexSplit", "mustRest", "mustReverse", "mustSlice", "mustToDate", "mustToJson",
	"mustToPrettyJson", "mustToRawJson", "mustUniq", "mustWithout", "must_date_modify", "nindent", "nospace", "now",
	"omit", "osBase", "osClean", "osDir", "osExt", "osIsAbs", "pick", "pluck",
	"plural", "prepend", "quote", "randAlpha", "randAlphaNum", "randAscii", "randBytes", "randInt",
	"randNumeric", "regexFind", "regexFindAll", "regexMatch", "regexQuoteMeta", "regexReplaceAll", "regexReplaceAllLiteral", "regexSplit",
	"repeat", "replace", "rest", "reverse", "round", "semver", "semverCompare", "seq",
	"set", "sha1sum", "sha256sum", "sha512sum", "shuffle", "slice", "snakecase", "sortAlpha",
	"split", "splitList", "splitn", "squote", "sub", "subf", "substr", "swapcase",
	"ternary", "title", "toDate", "toDecimal", "toJson", "toPrettyJson", "toRawJson", "toString",
	"toStrings", "trim", "trimAll", "trimPrefix", "trimSuffix", "trimall", "trunc", "tuple",
	"typeIs", "typeIsLike", "typeOf", "uniq", "unixEpoch", "unset", "until", "untilStep",
	"untitle", "upper", "urlJoin", "urlParse", "uuidv4", "values", "without", "wrap",
	"wrapWith",
}

func without(names []string, drop ...string) []string {
	out := []string{}
	for _, n := range names {
		keep := true
		for _, d := range drop {
			keep = keep && n != d
		}
		if keep {
			out = append(out, n)
		}
	}
	return out
}

// notificationsFuncs: notifications-engine pkg/templates/service.go (NewService) gives every
// template sprig's TxtFuncMap without env and expandenv, and nothing else. Argo CD's own helpers
// (.repo, .time, .strings) are variables called with `call`, not functions.
func notificationsFuncs() []string {
	return without(sprigFuncs, "env", "expandenv")
}

// applicationSetFuncs: argo-cd v3.4.7 applicationset/utils/utils.go (init) removes env,
// expandenv and getHostByName from sprig and adds normalize, slugify, toYaml, fromYaml and
// fromYamlArray.
func applicationSetFuncs() []string {
	return append(without(sprigFuncs, "env", "expandenv", "getHostByName"), "normalize", "slugify", "toYaml", "fromYaml", "fromYamlArray")
}
