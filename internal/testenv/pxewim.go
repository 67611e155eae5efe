package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// PxewimBuild builds the pxewim binary from the module's ./cmd/pxewim once per test binary, for
// tests that run the daemon as a real process (in a network namespace). A test package keeps one
// in a variable and calls Remove from TestMain.
type PxewimBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds the binary on first use and returns its path.
func (b *PxewimBuild) Path() (string, error) {
	b.once.Do(func() { b.path, b.err = b.build() })
	return b.path, b.err
}

func (b *PxewimBuild) build() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	if b.dir, err = os.MkdirTemp("", "pxewim-test-bin-"); err != nil {
		return "", err
	}
	bin := filepath.Join(b.dir, "pxewim")
	cmd := exec.Command(goTool(), "build", "-o", bin, "./cmd/pxewim")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/pxewim: %w\n%s", err, out)
	}
	return bin, nil
}

// Remove deletes the built binary, if any.
func (b *PxewimBuild) Remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func moduleRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the pxewim module (go env GOMOD = %q)", mod)
	}
	return filepath.Dir(mod), nil
}
