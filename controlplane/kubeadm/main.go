// Command kubeadm of the pinned release, for the kind node image that `scripts/images
// kind-node` makes here (kind runs kubeadm init inside its node). A module of its own,
// like coredns/: only that image needs it, and the control plane's cache key stays as
// it is.
package main

import (
	"k8s.io/kubernetes/cmd/kubeadm/app"
	utilerrors "k8s.io/kubernetes/cmd/kubeadm/app/util/errors"
)

func main() {
	utilerrors.HandleError(app.Run())
}
