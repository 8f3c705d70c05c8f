package container

import (
	"io"
	"os"
)

// capLog keeps a container's log file below max bytes: when it is larger,
// its last max/4 bytes are kept in path+".1" and the file is emptied. The
// container writes with O_APPEND, so it simply goes on at the new end.
// Lines written between the copy and the truncation are lost; that is the
// price of never blocking the container on its output.
func capLog(path string, max int64) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= max {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	keep := max / 4
	if _, err := f.Seek(-keep, io.SeekEnd); err != nil {
		return err
	}
	old, err := os.OpenFile(path+".1", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(old, f)
	if cerr := old.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Truncate(path, 0)
}
