package dhcp

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// portOwner describes who holds UDP port in this thread's network namespace, for the "port in
// use" error: " (held by dnsmasq, pid 1234)" or "" when it cannot tell. It reads
// /proc/thread-self/net/udp (per network namespace; /proc/self/net would show the main
// thread's namespace) and matches the socket inode against /proc/*/fd.
func portOwner(port int) string {
	inode := udpSocketInode(port)
	if inode == "" {
		return ""
	}
	target := "socket:[" + inode + "]"
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == target {
			pid := strings.Split(fd, "/")[2]
			comm, _ := os.ReadFile("/proc/" + pid + "/comm")
			return fmt.Sprintf(" (held by %s, pid %s)", strings.TrimSpace(string(comm)), pid)
		}
	}
	return " (socket inode " + inode + ")"
}

// udpSocketInode finds the inode of a UDP socket bound to port in /proc/thread-self/net/udp.
func udpSocketInode(port int) string {
	f, err := os.Open("/proc/thread-self/net/udp")
	if err != nil {
		return ""
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
		if len(fields) < 10 || !strings.HasSuffix(fields[1], want) {
			continue
		}
		if _, err := strconv.Atoi(fields[9]); err == nil {
			return fields[9]
		}
	}
	return ""
}
