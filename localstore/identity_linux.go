package localstore

import (
	"io/fs"
	"os"
	"syscall"
)

// statIdentity is the identity of the file version fi describes: device, inode, size, mtime
// and ctime (the WIM's GUID is added once its header is read).
func statIdentity(fi fs.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
		id.ctime = st.Ctim.Nano()
		id.full = true
	}
	return id
}

// fstatIdentity is statIdentity of an open file, without allocating (it runs after every read
// of a guarded WIM).
func fstatIdentity(f *os.File) (fileID, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return fileID{}, err
	}
	var st syscall.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil {
		return fileID{}, err
	}
	if serr != nil {
		return fileID{}, serr
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), full: true}, nil
}
