package catalog

import "errors"

var (
	// ErrNoRoot: no backend holds a root record that verifies under the
	// keys of this mnemonic.
	ErrNoRoot = errors.New("wrong mnemonic, or this store was never initialised")
	// ErrForeignStore: the backends hold root records, none of which
	// verifies under this mnemonic; init refuses to write over them.
	ErrForeignStore = errors.New("the backends already hold a store under another mnemonic (or only corrupt root records)")
	// ErrExists: init found a valid root: the store is already initialised.
	ErrExists = errors.New("the store is already initialised")
	// ErrNotFound: no file of that name in the catalog.
	ErrNotFound = errors.New("no such file in the store")
	// ErrQuorum: fewer than a majority of backends took a new root record.
	ErrQuorum = errors.New("too few backends took the new root record")
	// ErrCorrupt: a root record or catalog is malformed or fails
	// authentication.
	ErrCorrupt = errors.New("catalog: corrupt or forged metadata")
	// ErrName: a file name breaks the rules of ValidName.
	ErrName = errors.New("invalid file name")
	// ErrNameTooLong: a name, one of its components or a link target is
	// over its length limit (always wrapped with ErrName).
	ErrNameTooLong = errors.New("name too long")
	// ErrConfig: the store configuration is invalid.
	ErrConfig = errors.New("invalid store configuration")
	// ErrTooLarge: a file needs more segments than one catalog entry holds.
	ErrTooLarge = errors.New("file too large for one catalog entry")
)
