//go:build !linux

package localstore

import (
	"io/fs"
	"os"
)

// statIdentity is the identity of the file version fi describes: size and mtime only on this
// system (pxewim is built for Linux; this keeps the package portable).
func statIdentity(fi fs.FileInfo) fileID {
	return fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

func fstatIdentity(f *os.File) (fileID, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, err
	}
	return statIdentity(fi), nil
}
