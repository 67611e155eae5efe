// Package wiminterop tests httpboot serving real WIM images: WIMs built by wimlib-imagex with
// every compression, opened with package wim, downloaded whole and by ranges over HTTP and
// compared with the captured files. It is a package of its own so that httpboot's own tests
// never depend on the state of package wim.
package wiminterop
