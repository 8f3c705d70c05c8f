package zdbbackend

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/zdb"
)

// List walks the namespace with SCAN (zdb has no server-side match, so
// the prefix is filtered here). SCAN returns a key rewritten during the
// walk a second time; List reports each name once, so it keeps the names
// it has seen (memory grows with the matching names). Keys that are not
// storage.ValidName (written by something else) are skipped.
func (b *Backend) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	seen := map[string]struct{}{}
	var cursor string
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("zdb backend %s: list: %w", b.cfg.ID, err)
		}
		args := []any{"SCAN"}
		if cursor != "" {
			args = append(args, cursor)
		}
		reply, err := b.rdb.Do(ctx, args...).Slice()
		if isReply(err, zdb.ErrNoMoreData) {
			return nil
		}
		if err != nil {
			return b.fail(ctx, "list", "", err)
		}
		next, batch, err := parseScan(reply)
		if err != nil {
			return b.fail(ctx, "list", "", err)
		}
		for _, info := range batch {
			if _, dup := seen[info.Name]; dup || !strings.HasPrefix(info.Name, prefix) || storage.ValidName(info.Name) != nil {
				continue
			}
			seen[info.Name] = struct{}{}
			if err := fn(info); err != nil {
				return err
			}
		}
		cursor = next
	}
}

var errScanReply = errors.New("malformed SCAN reply")

// parseScan decodes [cursor, [[key, size, timestamp], …]].
func parseScan(reply []any) (cursor string, batch []storage.Info, err error) {
	if len(reply) != 2 {
		return "", nil, fmt.Errorf("%w: %d elements, want 2", errScanReply, len(reply))
	}
	cursor, ok := reply[0].(string)
	entries, ok2 := reply[1].([]any)
	if !ok || !ok2 || cursor == "" {
		return "", nil, fmt.Errorf("%w: want a cursor and a list", errScanReply)
	}
	batch = make([]storage.Info, 0, len(entries))
	for _, e := range entries {
		fields, ok := e.([]any)
		if !ok || len(fields) < 2 {
			return "", nil, fmt.Errorf("%w: entry %v", errScanReply, e)
		}
		key, ok := fields[0].(string)
		size, ok2 := fields[1].(int64)
		if !ok || !ok2 || size < 0 {
			return "", nil, fmt.Errorf("%w: entry %v", errScanReply, e)
		}
		batch = append(batch, storage.Info{Name: key, Size: size})
	}
	return cursor, batch, nil
}
