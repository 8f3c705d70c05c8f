//go:build !linux

package main

import (
	"context"
	"errors"
	"time"
)

func udpDelay(context.Context, string, time.Duration) (string, error) {
	return "", errors.New("the UDP delay proxy needs Linux (SO_TIMESTAMPNS, UDP_GRO, UDP_SEGMENT)")
}
