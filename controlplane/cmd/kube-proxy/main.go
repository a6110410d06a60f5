// Command kube-proxy is the upstream Service proxy of the pinned release (iptables mode
// on the local cluster's container node).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
