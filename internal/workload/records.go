package workload

import (
	"os"
	"path/filepath"
	"strconv"
)

// ListRecords returns the workloads stored under root as
// root/<deployment>/<name>/ that have a record at state(ref). A missing
// root holds none. Managers use it to implement List.
func ListRecords(root string, state func(Ref) string) ([]Ref, error) {
	deps, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var refs []Ref
	for _, dep := range deps {
		id, err := strconv.ParseUint(dep.Name(), 10, 64)
		if err != nil || !dep.IsDir() {
			continue
		}
		names, err := os.ReadDir(filepath.Join(root, dep.Name()))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			ref := Ref{Deployment: id, Name: n.Name()}
			if _, err := os.Stat(state(ref)); err == nil {
				refs = append(refs, ref)
			}
		}
	}
	return refs, nil
}
