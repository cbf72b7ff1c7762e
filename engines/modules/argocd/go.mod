// Wrapper module for Argo CD's CRDs only: the toolchain downloads the Argo CD module at the pinned
// version and copies manifests/crds. (Argo CD's binaries cannot be built here: the gitops-engine
// module it requires is not served by the Go module proxy; README, "What the real-engine suite proves".)
module agentfleet.local/engines/argocd

go 1.26.0

require github.com/argoproj/argo-cd/v3 v3.4.7
