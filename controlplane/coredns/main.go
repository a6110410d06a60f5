// Command coredns is CoreDNS with only the plugins a cluster's DNS needs: it
// answers for Services and pods (kubernetes), forwards everything else (forward),
// and says when it has synced (ready); plus those of the Corefile kubeadm writes
// (health, prometheus, loop, reload, loadbalance), for the kind node image. Its own module, because CoreDNS pins newer
// gRPC and OpenTelemetry than the Kubernetes release; sharing one go.mod would
// rebuild the whole control plane against them.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func init() {
	// The order in which a query passes through the plugins (as plugin.cfg orders
	// them upstream); only these may appear in a Corefile.
	dnsserver.Directives = []string{
		"reload", "bind", "ready", "health", "prometheus", "errors", "loadbalance", "cache",
		"kubernetes", "loop", "forward",
	}
}

func main() {
	coremain.Run()
}
