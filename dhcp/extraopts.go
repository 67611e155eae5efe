package dhcp

import (
	"fmt"
	"net"
	"slices"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
)

// RuleOptions are the extra options of one rule (rules[].dhcp_options) for the clients its
// Match selects.
type RuleOptions struct {
	Match   boot.Match
	Options []boot.DHCPOption
	Line    int // the rule's line, for messages
}

// neverExtra are codes an extra option may never carry, whatever built it: the protocol's own
// and the boot information pxewim sets per client. (The config decoder refuses more, with
// reasons: boot/config_dhcpopts.go.)
var neverExtra = []uint8{0, 12, 43, 51, 52, 53, 54, 58, 59, 60, 66, 67, 97, 255}

// validateOptions checks extra options built outside the config decoder.
func validateOptions(pool []boot.DHCPOption, rules []RuleOptions) error {
	check := func(where string, os []boot.DHCPOption) error {
		for _, o := range os {
			if slices.Contains(neverExtra, o.Code) {
				return fmt.Errorf("dhcp full mode: %s: option %d is set by pxewim itself", where, o.Code)
			}
			if len(o.Value) > 255 {
				return fmt.Errorf("dhcp full mode: %s: option %d has %d bytes, at most 255", where, o.Code, len(o.Value))
			}
		}
		return nil
	}
	if err := check("options", pool); err != nil {
		return err
	}
	for i, r := range rules {
		if err := check(fmt.Sprintf("rule %d (line %d)", i+1, r.Line), r.Options); err != nil {
			return err
		}
	}
	return nil
}

// extraOptions returns the extra options for the client of pkt: those of every rule that
// matches it, in rule order (on one code the first matching rule wins), then the pool's for
// codes no rule gave. Rules match the client as Classify sees it; a client that is not
// network-booting (an installed OS) is matched by its MAC alone (and arch when it sends 93),
// so rules with ipxe, httpboot or uuid criteria only ever apply to netboot requests.
func (f *fullState) extraOptions(pkt *dhcpv4.DHCPv4, client *boot.Client) []boot.DHCPOption {
	if len(f.cfg.Options) == 0 && len(f.cfg.RuleOptions) == 0 {
		return nil
	}
	var c boot.Client
	if client != nil {
		c = *client
	} else {
		c.MAC = net.HardwareAddr(cloneMAC(pkt.ClientHWAddr))
		if a, err := clientArch(pkt.Options.Get(optClientArch)); err == nil {
			c.Arch = a
			c.Firmware, _ = boot.FirmwareFromArch(a)
		}
	}
	var out []boot.DHCPOption
	have := map[uint8]bool{}
	add := func(os []boot.DHCPOption) {
		for _, o := range os {
			if !have[o.Code] {
				have[o.Code] = true
				out = append(out, o)
			}
		}
	}
	for _, r := range f.cfg.RuleOptions {
		if r.Match.Matches(c) {
			add(r.Options)
		}
	}
	add(f.cfg.Options)
	return out
}

// hostName is the reserved name of mac, or "".
func (f *fullState) hostName(mac string) string {
	for _, r := range f.cfg.Reservations {
		if r.MAC == mac {
			return r.Name
		}
	}
	return ""
}

// requestedOnly keeps the options the client listed in option 55.
func requestedOnly(pkt *dhcpv4.DHCPv4, os []boot.DHCPOption) []boot.DHCPOption {
	want := pkt.Options.Get(dhcpv4.OptionParameterRequestList)
	var out []boot.DHCPOption
	for _, o := range os {
		if slices.Contains(want, o.Code) {
			out = append(out, o)
		}
	}
	return out
}
