package boot

import (
	"github.com/pxewim/pxewim/internal/ipxetok"
	"strings"
	"testing"
)

func imageURL(r Ref) (string, error) { return "http://10.0.0.1/files/" + r.String(), nil }

func TestImageEntries(t *testing.T) {
	cfg, err := ParseConfig("i.yaml", []byte(`
images: {syslinux: /opt/syslinux}
entries:
  - name: dos
    memdisk: {image: dos/DOS622.IMG, args: "floppy c=80 h=2 s=18"}
  - name: short
    memdisk: tools/fdos.ima
  - name: rescue
    iso: {image: isos/rescue.iso}
  - name: oldcd
    iso: {image: isos/old.iso, method: memdisk}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Images.SyslinuxDir != "/opt/syslinux" {
		t.Errorf("images.syslinux = %q", cfg.Images.SyslinuxDir)
	}
	const guard = "iseq ${platform} pcbios || echo pxewim: memdisk boots only on BIOS machines, and this one runs ${platform}\niseq ${platform} pcbios || goto failed\n"
	want := map[string]string{
		"dos":    guard + "kernel http://10.0.0.1/files/syslinux/memdisk floppy c=80 h=2 s=18 || goto failed\ninitrd http://10.0.0.1/files/dos/DOS622.IMG || goto failed\nboot || goto failed\n",
		"short":  guard + "kernel http://10.0.0.1/files/syslinux/memdisk || goto failed\ninitrd http://10.0.0.1/files/tools/fdos.ima || goto failed\nboot || goto failed\n",
		"rescue": "sanboot --no-describe http://10.0.0.1/files/isos/rescue.iso || goto failed\n",
		"oldcd":  guard + "kernel http://10.0.0.1/files/syslinux/memdisk iso raw || goto failed\ninitrd http://10.0.0.1/files/isos/old.iso || goto failed\nboot || goto failed\n",
	}
	for name, script := range want {
		e, ok := cfg.Entry(name)
		if !ok {
			t.Fatalf("no entry %q", name)
		}
		got, err := e.Boot.IPXE(&ScriptEnv{URL: imageURL})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != script {
			t.Errorf("%s script:\n%s\nwant:\n%s", name, got, script)
		}
	}
	if e, _ := cfg.Entry("oldcd"); len(e.Boot.Refs()) != 2 {
		t.Errorf("memdisk ISO refs = %v, want memdisk and the ISO", e.Boot.Refs())
	}
}

func TestImageEntryErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"no image", "entries:\n  - name: a\n    memdisk: {args: floppy}\n", "entries[0].memdisk.image: required"},
		{"bad args", "entries:\n  - name: a\n    memdisk: {image: a.img, args: \"floppy || shell\"}\n", `memdisk option "||"`},
		{"newline args", "entries:\n  - name: a\n    memdisk: {image: a.img, args: \"floppy\\nshell\"}\n", `one line`},
		{"escape", "entries:\n  - name: a\n    iso: ../x.iso\n", "not a clean relative path"},
		{"method", "entries:\n  - name: a\n    iso: {image: a.iso, method: dd}\n", "want sanboot or memdisk"},
		{"unknown key", "entries:\n  - name: a\n    iso: {image: a.iso, foo: 1}\n", "unknown key"},
		{"images auto", "images: {auto: maybe}\n", "want true or false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("e.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestWithImages(t *testing.T) {
	cfg, err := ParseConfig("w.yaml", []byte("entries:\n  - name: mine\n    iso: isos/Rescue.iso\n"))
	if err != nil {
		t.Fatal(err)
	}
	snap := &StoreImages{Files: []ImageFile{
		{Path: "dos/dos622.img", Kind: KindDiskImage},
		{Path: "isos/rescue.iso", Kind: KindISO}, // the config boots it already (other case)
		{Path: "isos/Gparted Live.iso", Kind: KindISO},
		{Path: "tools.wim", Kind: "wim"},
		{Path: "floppy/old.IMA", Kind: KindDiskImage},
		{Path: "isos/my iso's & stuff.iso", Kind: KindISO},
		{Path: `isos/back\slash.iso`, Kind: KindISO},
		{Path: "isos/cut.iso", Kind: KindISO, Unreadable: "unreadable ISO: iso: no volume descriptor"},
	}}
	got := cfg.WithImages(snap)
	var names []string
	for _, e := range got.Entries {
		names = append(names, e.Name+"="+e.Boot.Kind())
	}
	want := "mine=iso img-dos-dos622-img=memdisk iso-isos-gparted-live-iso=iso img-floppy-old-ima=memdisk iso-isos-my-iso-s-stuff-iso=iso"
	if strings.Join(names, " ") != want {
		t.Errorf("entries %q, want %q", strings.Join(names, " "), want)
	}
	if len(cfg.Entries) != 1 {
		t.Errorf("WithImages changed the base config: %d entries", len(cfg.Entries))
	}
	cfg.Images.NoAuto = true
	if n := len(cfg.WithImages(snap).Entries); n != 1 {
		t.Errorf("images.auto false: %d entries, want 1", n)
	}
	p, err := NewPolicy(got)
	if err != nil {
		t.Fatalf("policy over the image entries: %v", err)
	}
	menu, err := p.ScriptFor(Client{}, ScriptMenu, hostileURL, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	// Any file name gets an entry (point 7): spaces, quotes and '&' are percent-encoded in
	// the URL and inert in the title; a name the store cannot address and an unreadable ISO
	// are disabled lines with the reason.
	for _, want := range []string{
		"item img-dos-dos622-img dos622.img (disk image, memdisk)\n",
		"item iso-isos-my-iso-s-stuff-iso my iso's & stuff.iso (ISO, sanboot)\n",
		"sanboot --no-describe http://10.77.0.1/files/isos/my%20iso%27s%20&%20stuff.iso || goto failed\n",
		"sanboot --no-describe http://10.77.0.1/files/isos/Gparted%20Live.iso || goto failed\n",
		"item --gap isos/cut.iso cannot boot: unreadable ISO: iso: no volume descriptor\n",
		"item --gap isos/back\\slash.iso cannot boot: its name cannot be served (a backslash reads as a folder separator): rename it\n",
	} {
		if !strings.Contains(menu, want) {
			t.Errorf("menu lacks %q:\n%s", want, menu)
		}
	}
	if probs, _ := ipxetok.Check(menu, []string{"http://10.77.0.1/files/"}); len(probs) > 0 {
		t.Errorf("menu: %v", probs)
	}
}

func FuzzParseImageEntry(f *testing.F) {
	f.Add("memdisk: {image: a.img, args: floppy}")
	f.Add("iso: {image: b.iso, method: memdisk}")
	f.Add("iso: c.iso")
	f.Fuzz(func(t *testing.T, entry string) {
		cfg, err := ParseConfig("f.yaml", []byte("entries:\n  - name: x\n    "+entry+"\n"))
		if err != nil {
			return
		}
		for _, e := range cfg.Entries {
			s, err := e.Boot.IPXE(&ScriptEnv{URL: imageURL})
			if err == nil && strings.Count(s, "\n") > 5 {
				t.Errorf("entry %q renders %d lines: %q", entry, strings.Count(s, "\n"), s)
			}
		}
	})
}

func TestUploadConfig(t *testing.T) {
	cfg, err := ParseConfig("u.yaml", []byte("upload: {listen: \"127.0.0.1:2222\", authorized_keys: /etc/pxewim/admins, host_key: /var/lib/pxewim/host_ed25519}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upload.Listen != "127.0.0.1:2222" || cfg.Upload.AuthorizedKeys != "/etc/pxewim/admins" || cfg.Upload.HostKey != "/var/lib/pxewim/host_ed25519" {
		t.Errorf("upload = %+v", cfg.Upload)
	}
	if _, err := ParseConfig("u.yaml", []byte("upload: {listen: \"127.0.0.1:2222\"}\n")); err == nil || !strings.Contains(err.Error(), "upload.authorized_keys: required") {
		t.Errorf("missing keys: %v", err)
	}
	if _, err := ParseConfig("u.yaml", []byte("upload: {listen: \"host:22\", authorized_keys: a, host_key: b}\n")); err == nil || !strings.Contains(err.Error(), "IP address") {
		t.Errorf("bad listen: %v", err)
	}
}

func TestSFTPConfig(t *testing.T) {
	cfg, err := ParseConfig("s.yaml", []byte("store: sftp://pxe@images.lab:2222/srv/images\nsftp: {keys: [/etc/pxewim/id_ed25519], known_hosts: /etc/pxewim/known_hosts, cache: 256MiB}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.RemoteStore() || cfg.SFTP.CacheBytes != 256<<20 || len(cfg.SFTP.Keys) != 1 || len(cfg.SFTP.KnownHosts) != 1 {
		t.Errorf("sftp = %+v remote=%v", cfg.SFTP, cfg.RemoteStore())
	}
	for _, bad := range []string{"-1", "12XB", "2000GiB"} {
		if _, err := ParseConfig("s.yaml", []byte("sftp: {cache: "+bad+"}\n")); err == nil || !strings.Contains(err.Error(), "want a size") {
			t.Errorf("cache %s: %v", bad, err)
		}
	}
}
