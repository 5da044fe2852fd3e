//go:build !k8s_1_34

package main

import (
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	serviceaccountcontroller "k8s.io/kubernetes/pkg/controller/serviceaccount"
)

// Signatures that differ between the Kubernetes versions this builds with
// (see compat_1_34.go, built with -tags k8s_1_34 and go.1.34.mod).

func newServiceAccountsController(logger klog.Logger, sa coreinformers.ServiceAccountInformer, ns coreinformers.NamespaceInformer, cl kubernetes.Interface) (*serviceaccountcontroller.ServiceAccountsController, error) {
	return serviceaccountcontroller.NewServiceAccountsController(logger, sa, ns, cl, serviceaccountcontroller.DefaultServiceAccountsControllerOptions())
}
