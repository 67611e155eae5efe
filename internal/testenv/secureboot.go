package testenv

// Secure Boot firmware for QEMU VMs: Debian's OVMF build with Secure Boot enforced (SMM, so the
// variable store cannot be changed from outside the firmware) and a VARS template with keys
// enrolled.
const (
	OVMFSecureBootCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	// OVMFVarsMS has Microsoft's KEK and db (Windows Production PCA 2011, Microsoft UEFI CA
	// 2011) enrolled and Secure Boot on: what a stock PC has.
	OVMFVarsMS = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
	// OVMFVarsSnakeoil has Debian's snakeoil PK/KEK/db (SnakeoilKey, SnakeoilCert) enrolled:
	// binaries signed with that key boot, as under a site's own db key.
	OVMFVarsSnakeoil = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd"
	SnakeoilKey      = "/usr/share/ovmf/PkKek-1-snakeoil.key"
	SnakeoilCert     = "/usr/share/ovmf/PkKek-1-snakeoil.pem"
)

// SecureBootFirmware makes an OVMF VM boot Debian's Secure Boot OVMF with the VARS template
// Vars (OVMFVarsMS or OVMFVarsSnakeoil), copied into the VM's folder for each run.
type SecureBootFirmware struct {
	Vars string
}

// ovmfFiles are the code, the VARS template and the machine type an OVMF VM runs with.
func (s *VMSpec) ovmfFiles() (code, vars, machine string, extra []string) {
	if s.SecureBoot == nil {
		return OVMFCode, OVMFVars, "q35", nil
	}
	// The secboot build keeps its variables in SMM: q35 with smm on and the flash secure.
	return OVMFSecureBootCode, s.SecureBoot.Vars, "q35,smm=on",
		[]string{"-global", "driver=cfi.pflash01,property=secure,value=on"}
}
