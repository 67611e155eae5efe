package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/pxewim/pxewim/authenticode"
	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
)

// checkSecureBoot reports, from signatures read (never assumed), what Secure Boot clients will
// refuse or stop booting: the UEFI boot managers of every WindowsPE image in the store (PCA
// 2011-only, unsigned, digest mismatch), the signed chain pxewim hands out when secure_boot is
// on (shim, GRUB, the site's iPXE), the entries Secure Boot clients are not offered, and the
// next-server that Debian's GRUB needs in proxy mode.
// badLoader reports a boot manager that Secure Boot firmware refuses (unsigned, a signature
// that does not match, not a PE image). It keeps clients from booting when the config serves
// Secure Boot clients (secure_boot set); otherwise it is a note: clients without Secure Boot
// boot it, and the admin learns what a Secure Boot machine would do.
func badLoader(st *state, what string) problem {
	const fix = "take the boot files from untouched Windows media or the ADK"
	if st.policy != nil && st.policy.SecureBootInUse() {
		return problem{what: what, fix: fix}
	}
	return problem{what: what, info: true, fix: "clients without Secure Boot boot it; Secure Boot clients refuse it: " + fix}
}

func checkSecureBoot(st *state) []problem {
	var ps []problem
	cfg := st.cfg
	if st.snap != nil && st.store != nil {
		for _, ref := range st.snap.WindowsPE() {
			loc := fmt.Sprintf("%s:%d", ref.File.Path, ref.Image.Index)
			sigs := catalog.ImageLoaderSignatures(st.store, ref.File.Path, ref.Image.Index)
			ex2023 := false
			for _, s := range sigs {
				if strings.HasPrefix(s.Path, "EFI_EX/") && s.Report != nil && s.Report.AllGood() && s.Report.ChainsTo(authenticode.CAWindowsUEFI2023) {
					ex2023 = true
				}
			}
			for _, s := range sigs {
				what := fmt.Sprintf("store %s: %s: %s", loc, s.Path, s.Summary())
				switch w := s.Warning(); {
				case w == "":
					ps = append(ps, problem{what: what, info: true, fix: "Secure Boot clients accept it"})
				case s.Report == nil || !s.Report.AllGood():
					ps = append(ps, badLoader(st, fmt.Sprintf("store %s: %s: %s", loc, s.Path, w)))
				case s.Report.PCA2011Only() && ex2023:
					ps = append(ps, problem{what: what + ": PCA 2011-only", info: true,
						fix: "the image also holds bootmgfw_EX.efi signed by Windows UEFI CA 2023: set uefi_bootmgr: auto (or ex) so that updated machines keep booting"})
				case s.Report.PCA2011Only():
					ps = append(ps, problem{what: fmt.Sprintf("store %s: %s: %s", loc, s.Path, w),
						fix: "rebuild the image from Windows 11 24H2+ media or ADK (Windows\\Boot\\EFI_EX\\bootmgfw_EX.efi, signed by Windows UEFI CA 2023) and set uefi_bootmgr: auto"})
				default:
					ps = append(ps, badLoader(st, fmt.Sprintf("store %s: %s: %s", loc, s.Path, w)))
				}
			}
		}
	}
	if st.policy == nil || !st.policy.SecureBootInUse() {
		return ps
	}
	sb := cfg.SecureBoot
	loaders := map[string]string{"secure_boot.shim": sb.ShimPath(), "secure_boot.grub": sb.GRUBPath()}
	if sb.IPXE != "" {
		loaders["secure_boot.ipxe"] = sb.IPXE
	}
	for _, key := range []string{"secure_boot.shim", "secure_boot.grub", "secure_boot.ipxe"} {
		p, ok := loaders[key]
		if !ok {
			continue
		}
		s := catalog.ReadLoaderSignature(os.DirFS("/"), strings.TrimPrefix(p, "/"))
		s.Path = p
		if w := s.Warning(); w != "" && !(s.Report != nil && s.Report.AllGood()) {
			ps = append(ps, problem{what: fmt.Sprintf("%s: %s: %s", key, p, w),
				fix: "install Debian's shim-signed and grub-efi-amd64-signed, or name a binary signed for your machines' db"})
		} else {
			ps = append(ps, problem{what: fmt.Sprintf("%s: %s: %s", key, p, s.Summary()), info: true, fix: "served to Secure Boot clients"})
		}
	}
	for _, sp := range st.policy.SecureBootProblems() {
		where := fmt.Sprintf("%s:%d", cfg.Source, sp.Line)
		if sp.Line == 0 {
			where = "from the catalog"
		}
		ps = append(ps, problem{what: fmt.Sprintf("entry %q (%s): %s", sp.Entry, where, sp.Reason), info: true,
			fix: "Secure Boot clients boot the other entries; machines that must boot this one need Secure Boot off, or a rule with secure_boot: off or ipxe"})
	}
	if sb.Mode == boot.SecureBootShim || anyRuleShim(cfg) {
		ps = append(ps, problem{what: "secure_boot shim: UEFI HTTP Boot clients get no boot file: Debian's signed netboot GRUB has no built-in http module and may not load one under Secure Boot", info: true,
			fix: "boot those machines over PXE, or give them a signed iPXE (secure_boot: {mode: ipxe, ipxe: PATH}, per rule if need be)"})
	}
	if cfg.DHCP.Mode == boot.DHCPProxy && (sb.Mode == boot.SecureBootShim || anyRuleShim(cfg)) {
		ps = append(ps, problem{what: "secure_boot shim in proxy mode: Debian's signed GRUB takes its TFTP server from the site DHCP server's ACK (siaddr), not from pxewim's proxy offer", info: true,
			fix: "set next-server (siaddr) to this host on the site's DHCP server (dnsmasq: dhcp-boot=,pxewim,ADDRESS; ISC: next-server), or use full mode"})
	}
	return ps
}

func anyRuleShim(cfg *boot.Config) bool {
	for _, r := range cfg.Rules {
		if r.SecureBoot == boot.SecureBootShim {
			return true
		}
	}
	return false
}
