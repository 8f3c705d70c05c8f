package chain

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLoggerAdapter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		level slog.Level
		log   func(l *slogLogger)
		want  string // "" means nothing logged
	}{
		{"debug", slog.LevelDebug, func(l *slogLogger) { l.Debug("d", "k", 1) }, "level=DEBUG msg=d k=1"},
		{"info", slog.LevelDebug, func(l *slogLogger) { l.Info("i", "k", "v") }, "level=INFO msg=i k=v"},
		{"error", slog.LevelDebug, func(l *slogLogger) { l.Error("e", "err", "boom") }, "level=ERROR msg=e err=boom"},
		{"with", slog.LevelDebug, func(l *slogLogger) { l.With("module", "p2p").Info("w") }, "level=INFO msg=w module=p2p"},
		{"filtered", slog.LevelWarn, func(l *slogLogger) { l.Info("quiet") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			h := slog.NewTextHandler(&buf, &slog.HandlerOptions{
				Level: tt.level,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			})
			l := NewLogger(slog.New(h)).(slogLogger)
			tt.log(&l)
			if got := strings.TrimSpace(buf.String()); got != tt.want {
				t.Errorf("logged %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNilLoggerDiscards(t *testing.T) {
	t.Parallel()
	l := NewLogger(nil)
	l.Info("dropped", "k", 1) // must not panic
	l.With("a", "b").Error("dropped")
}
