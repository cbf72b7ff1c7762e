// One binary for the Argo CD components the fleet runs, dispatched on the name it is started as
// (the engine installs it under each name), as Argo CD's own cmd/main.go does. Only what agentfleet's
// hub runs: no API server, UI, dex or CLI client.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	admin "github.com/argoproj/argo-cd/v3/cmd/argocd/commands/admin"
	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	applicationset "github.com/argoproj/argo-cd/v3/cmd/argocd-applicationset-controller/commands"
	notification "github.com/argoproj/argo-cd/v3/cmd/argocd-notification/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/pkg/apiclient"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func init() {
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

func main() {
	var command *cobra.Command
	switch name := filepath.Base(os.Args[0]); name {
	case "argocd-application-controller":
		command = appcontroller.NewCommand()
	case "argocd-applicationset-controller":
		command = applicationset.NewCommand()
	case "argocd-repo-server":
		command = reposerver.NewCommand()
	case "argocd-notifications":
		command = notification.NewCommand()
	case "argocd":
		// Only `argocd admin ...` (offline health and notification checks).
		command = &cobra.Command{Use: "argocd"}
		command.AddCommand(admin.NewAdminCommand(&apiclient.ClientOptions{}))
	default:
		fmt.Fprintf(os.Stderr, "%s: start this binary as argocd-application-controller, argocd-applicationset-controller, argocd-repo-server, argocd-notifications or argocd (admin)\n", name)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
