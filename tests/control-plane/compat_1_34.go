//go:build k8s_1_34

package main

import (
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	serviceaccountcontroller "k8s.io/kubernetes/pkg/controller/serviceaccount"
)

func newServiceAccountsController(_ klog.Logger, sa coreinformers.ServiceAccountInformer, ns coreinformers.NamespaceInformer, cl kubernetes.Interface) (*serviceaccountcontroller.ServiceAccountsController, error) {
	return serviceaccountcontroller.NewServiceAccountsController(sa, ns, cl, serviceaccountcontroller.DefaultServiceAccountsControllerOptions())
}
