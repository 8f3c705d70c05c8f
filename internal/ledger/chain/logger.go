package chain

import (
	"context"
	"log/slog"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// NewLogger adapts l to CometBFT's libs/log.Logger. CometBFT's Debug, Info
// and Error map to the slog levels of the same names; key/value pairs pass
// through unchanged. A nil l discards everything.
//
// CometBFT logs several Info lines per block; callers who want a quieter log
// should give a handler whose level is Warn or above.
func NewLogger(l *slog.Logger) cmtlog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return slogLogger{l: l}
}

var _ cmtlog.Logger = slogLogger{}

// slogLogger is safe for concurrent use because *slog.Logger is.
type slogLogger struct {
	l *slog.Logger
}

func (s slogLogger) Debug(msg string, keyvals ...any) {
	s.l.Log(context.Background(), slog.LevelDebug, msg, keyvals...)
}

func (s slogLogger) Info(msg string, keyvals ...any) {
	s.l.Log(context.Background(), slog.LevelInfo, msg, keyvals...)
}

func (s slogLogger) Error(msg string, keyvals ...any) {
	s.l.Log(context.Background(), slog.LevelError, msg, keyvals...)
}

func (s slogLogger) With(keyvals ...any) cmtlog.Logger {
	return slogLogger{l: s.l.With(keyvals...)}
}
