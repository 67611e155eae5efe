package testenv

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ThrowawayCA makes, in dir, a root CA named rootCN (e.g. like one of Microsoft's) and a signer
// under it with openssl (valid 100 years from now), and returns a function that signs the PE
// file in into out with them (sbsign, the root added to the signature), as authenticode's tests
// do. The caller checks that openssl and sbsign are installed.
func ThrowawayCA(t testing.TB, dir, rootCN string) func(in, out string) {
	t.Helper()
	run := func(name string, args ...string) {
		t.Helper()
		if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v: %s", name, args, err, b)
		}
	}
	p := func(n string) string { return filepath.Join(dir, strings.ReplaceAll(rootCN, " ", "_")+"-"+n) }
	run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("root.key"), "-out", p("root.pem"),
		"-days", "36500", "-subj", "/CN="+rootCN, "-addext", "basicConstraints=critical,CA:TRUE")
	run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("leaf.key"), "-out", p("leaf.csr"), "-subj", "/CN=Throwaway signer under "+rootCN)
	run("openssl", "x509", "-req", "-in", p("leaf.csr"), "-CA", p("root.pem"), "-CAkey", p("root.key"), "-CAcreateserial",
		"-out", p("leaf.pem"), "-days", "36500")
	return func(in, out string) {
		t.Helper()
		run("sbsign", "--key", p("leaf.key"), "--cert", p("leaf.pem"), "--addcert", p("root.pem"), "--output", out, in)
	}
}
