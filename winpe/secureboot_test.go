package winpe_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/localstore"
)

// throwawaySigner is testenv.ThrowawayCA for bytes: it signs in and returns the signed PE.
func throwawaySigner(t *testing.T, dir, rootCN string) func(in []byte) []byte {
	t.Helper()
	sign := testenv.ThrowawayCA(t, dir, rootCN)
	prefix := filepath.Join(dir, strings.ReplaceAll(rootCN, " ", "_")+"-")
	n := 0
	return func(in []byte) []byte {
		t.Helper()
		n++
		src, dst := prefix+"in.efi", prefix+"out"+string(rune('0'+n))+".efi"
		if err := os.WriteFile(src, in, 0o644); err != nil {
			t.Fatal(err)
		}
		sign(src, dst)
		b, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestWinPEUEFIBootmgrAutoSigned: uefi_bootmgr: auto hands out bootmgfw_EX.efi only when it is
// signed through Windows UEFI CA 2023 (here a throwaway CA of that name); an EX loader signed
// only through PCA 2011, unsigned, or altered after signing leaves the classic bootmgfw.efi.
// The bytes under the native path are the chosen loader's. classic and ex are unchanged.
func TestWinPEUEFIBootmgrAutoSigned(t *testing.T) {
	for _, tool := range []string{"openssl", "sbsign", "wimlib-imagex"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (test.sh installs openssl, sbsigntool, wimtools)", tool)
		}
	}
	pe := filepath.Join(testenv.IPXEDir, "snponly.efi") // any unsigned PE/COFF image
	testenv.RequireFiles(t, "ipxe", pe)
	unsigned, err := os.ReadFile(pe)
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	signPCA := throwawaySigner(t, keys, "Microsoft Windows Production PCA 2011")
	sign2023 := throwawaySigner(t, keys, "Windows UEFI CA 2023")
	classic := signPCA(unsigned)
	ex2023 := sign2023(unsigned)
	exPCA := signPCA(append(append([]byte(nil), unsigned...), make([]byte, 512)...)) // other bytes than classic
	tampered := append([]byte(nil), ex2023...)
	tampered[0x400] ^= 0xff // inside the first section: the signed digest no longer matches

	dir := t.TempDir()
	const exPath, classicPath = "Windows/Boot/EFI_EX/bootmgfw_EX.efi", "Windows/Boot/EFI/bootmgfw.efi"
	for name, ex := range map[string][]byte{"ex2023.wim": ex2023, "expca.wim": exPCA, "exunsigned.wim": unsigned, "extampered.wim": tampered} {
		testenv.BuildWinPE(t, filepath.Join(dir, name), []testenv.WinPEImage{{Name: name,
			Files: map[string][]byte{classicPath: classic, exPath: ex}}}, "--compress=LZX")
	}
	store, err := localstore.New(dir, localstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, tc := range []struct {
		image, mode string
		native      string // DHCP boot file of a stock UEFI client
		want        []byte // the bytes served under it
	}{
		{"ex2023.wim", "auto", `boot\bootmgfw_EX.efi`, ex2023},
		{"expca.wim", "auto", `boot\bootmgfw.efi`, classic},
		{"exunsigned.wim", "auto", `boot\bootmgfw.efi`, classic},
		{"extampered.wim", "auto", `boot\bootmgfw.efi`, classic},
		{"ex2023.wim", "classic", `boot\bootmgfw.efi`, classic},
		{"expca.wim", "ex", `boot\bootmgfw_EX.efi`, exPCA},
		{"exunsigned.wim", "ex", `boot\bootmgfw_EX.efi`, unsigned},
	} {
		t.Run(strings.TrimSuffix(tc.image, ".wim")+"-"+tc.mode, func(t *testing.T) {
			p := policyFor(t, "winpe: {wimboot: tools/wimboot}\nentries:\n  - name: pe\n    winpe: {image: "+tc.image+", uefi_bootmgr: "+tc.mode+"}\n"+
				"rules:\n  - {match: {mac: \"52:54:00:00:00:01\"}, entry: pe}\n", store)
			stock := client("52:54:00:00:00:01", boot.FirmwareEFI64, false)
			if got := p.Decide(stock, server).BootFile; got != tc.native {
				t.Errorf("native boot file %q, want %q", got, tc.native)
			}
			tree, err := p.Tree(stock)
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, tree, strings.ReplaceAll(tc.native, `\`, "/")); !bytes.Equal(got, tc.want) {
				t.Errorf("%s in the tree (%d bytes) is not the expected loader (%d bytes)", tc.native, len(got), len(tc.want))
			}
			// wimboot's bootmgfw.efi follows the same choice.
			ipxe := client("52:54:00:00:00:01", boot.FirmwareEFI64, true)
			if _, err := p.Tree(ipxe); err != nil {
				t.Fatal(err)
			}
			script, err := p.Script(ipxe, "pe.ipxe", func(r boot.Ref) (string, error) { return "u/" + r.String(), nil }, nil)
			if err != nil {
				t.Fatal(err)
			}
			path := classicPath
			if strings.Contains(tc.native, "_EX") {
				path = exPath
			}
			if want := "initrd -n bootmgfw.efi u/winpe/pe/image/" + path + " bootmgfw.efi"; !strings.Contains(script, want) {
				t.Errorf("script lacks %q:\n%s", want, script)
			}
			if tc.mode != "auto" {
				return
			}
			var all []string
			for _, f := range p.set.Check("pe") {
				all = append(all, f.What)
			}
			want := "UEFI clients get Windows/Boot/EFI/bootmgfw.efi (uefi_bootmgr: auto): the image's bootmgfw_EX.efi is not signed by Windows UEFI CA 2023"
			if tc.image == "ex2023.wim" {
				want = "UEFI clients get Windows/Boot/EFI_EX/bootmgfw_EX.efi (uefi_bootmgr: auto; it is signed by Windows UEFI CA 2023)"
			}
			if !strings.Contains(strings.Join(all, "\n"), want) {
				t.Errorf("check findings lack %q:\n%s", want, strings.Join(all, "\n"))
			}
		})
	}
}
