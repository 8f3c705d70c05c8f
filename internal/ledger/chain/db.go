package chain

import (
	"errors"
	"fmt"
	"sync"

	dbm "github.com/cometbft/cometbft-db"
	cmtcfg "github.com/cometbft/cometbft/config"
)

// errDBClosed is returned by writes to a database after Close.
var errDBClosed = errors.New("database closed: node stopped")

// dbSet opens a node's databases and remembers them. CometBFT v1.0.1 never
// closes the tx index database on Stop, and goleveldb holds a file lock
// until Close, so without this a home cannot be started twice in one process.
type dbSet struct {
	mu  sync.Mutex
	dbs []*guardedDB
}

// open is a cmtcfg.DBProvider. Safe for concurrent use.
func (s *dbSet) open(ctx *cmtcfg.DBContext) (dbm.DB, error) {
	db, err := cmtcfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, fmt.Errorf("open %s database in %s: %w", ctx.ID, ctx.Config.DBDir(), err)
	}
	g := &guardedDB{db: db, name: ctx.ID}
	s.mu.Lock()
	s.dbs = append(s.dbs, g)
	s.mu.Unlock()
	return g, nil
}

// closeAll closes every database opened so far, skipping those CometBFT
// already closed, and joins the close errors.
func (s *dbSet) closeAll() error {
	s.mu.Lock()
	dbs := s.dbs
	s.dbs = nil
	s.mu.Unlock()
	var errs []error
	for _, db := range dbs {
		if err := db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s database: %w", db.name, err))
		}
	}
	return errors.Join(errs...)
}

// guardedDB makes a closed database look empty to readers instead of
// failing. CometBFT v1.0.1 leaves per-peer consensus goroutines running
// after Stop (queryMaj23Routine sleeps for seconds, then reads the block
// store without checking whether the node still runs) and panics on the
// read error, which in process would take the whole program down. After
// Close, reads find nothing, writes return errDBClosed, and Close is a
// no-op, so this package and CometBFT can both close a database.
type guardedDB struct {
	name   string
	mu     sync.RWMutex // held for reading during every call into db
	closed bool
	db     dbm.DB
}

var _ dbm.DB = (*guardedDB)(nil)

func (g *guardedDB) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.db.Close()
}

// read runs f with the database held open, or reports false once closed.
func (g *guardedDB) read(f func()) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return false
	}
	f()
	return true
}

func (g *guardedDB) write(f func() error) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return errDBClosed
	}
	return f()
}

func (g *guardedDB) Get(key []byte) (v []byte, err error) {
	g.read(func() { v, err = g.db.Get(key) })
	return v, err
}

func (g *guardedDB) Has(key []byte) (ok bool, err error) {
	g.read(func() { ok, err = g.db.Has(key) })
	return ok, err
}

func (g *guardedDB) Iterator(start, end []byte) (it dbm.Iterator, err error) {
	if !g.read(func() { it, err = g.db.Iterator(start, end) }) {
		return emptyIterator{start: start, end: end}, nil
	}
	return it, err
}

func (g *guardedDB) ReverseIterator(start, end []byte) (it dbm.Iterator, err error) {
	if !g.read(func() { it, err = g.db.ReverseIterator(start, end) }) {
		return emptyIterator{start: start, end: end}, nil
	}
	return it, err
}

func (g *guardedDB) Set(key, value []byte) error {
	return g.write(func() error { return g.db.Set(key, value) })
}

func (g *guardedDB) SetSync(key, value []byte) error {
	return g.write(func() error { return g.db.SetSync(key, value) })
}

func (g *guardedDB) Delete(key []byte) error {
	return g.write(func() error { return g.db.Delete(key) })
}

func (g *guardedDB) DeleteSync(key []byte) error {
	return g.write(func() error { return g.db.DeleteSync(key) })
}

func (g *guardedDB) Compact(start, end []byte) error {
	return g.write(func() error { return g.db.Compact(start, end) })
}

// NewBatch is not guarded: a batch written after Close fails with the
// backend's own error. Writers stop before the databases close.
func (g *guardedDB) NewBatch() dbm.Batch {
	return g.db.NewBatch()
}

func (g *guardedDB) Print() error {
	return g.write(g.db.Print)
}

func (g *guardedDB) Stats() (s map[string]string) {
	if !g.read(func() { s = g.db.Stats() }) {
		return map[string]string{}
	}
	return s
}

// emptyIterator is what a closed database iterates over.
type emptyIterator struct{ start, end []byte }

func (it emptyIterator) Domain() ([]byte, []byte) { return it.start, it.end }
func (emptyIterator) Valid() bool                 { return false }
func (emptyIterator) Next()                       { panic("chain: Next on an invalid iterator") }
func (emptyIterator) Key() []byte                 { panic("chain: Key on an invalid iterator") }
func (emptyIterator) Value() []byte               { panic("chain: Value on an invalid iterator") }
func (emptyIterator) Error() error                { return nil }
func (emptyIterator) Close() error                { return nil }
