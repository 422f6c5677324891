//go:build linux

package main

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// wakeRoundTrip is the mean time of a round trip between two threads,
// on CPUs a and b, through two pipes: each thread blocks in read until
// the other writes, so a round trip is two wake-ups. Across CPUs a
// wake-up may cost an inter-processor interrupt and, on a virtual
// machine, the exit of an idle virtual CPU from halt.
func wakeRoundTrip(a, b, rounds int) (time.Duration, error) {
	var ping, pong [2]int
	if err := unix.Pipe2(ping[:], unix.O_CLOEXEC); err != nil {
		return 0, err
	}
	defer unix.Close(ping[0])
	defer unix.Close(ping[1])
	if err := unix.Pipe2(pong[:], unix.O_CLOEXEC); err != nil {
		return 0, err
	}
	defer unix.Close(pong[0])
	defer unix.Close(pong[1])
	echo := make(chan error, 1)
	go func() {
		echo <- onCPU(b, func() error { return relay(ping[0], pong[1], rounds) })
	}()
	var took time.Duration
	err := onCPU(a, func() error {
		buf := []byte{1}
		start := time.Now()
		for range rounds {
			if _, err := unix.Write(ping[1], buf); err != nil {
				return err
			}
			if _, err := unix.Read(pong[0], buf); err != nil {
				return err
			}
		}
		took = time.Since(start)
		return nil
	})
	if e := <-echo; err == nil {
		err = e
	}
	return took / time.Duration(rounds), err
}

// relay copies one byte from in to out, rounds times.
func relay(in, out, rounds int) error {
	buf := []byte{0}
	for range rounds {
		if _, err := unix.Read(in, buf); err != nil {
			return err
		}
		if _, err := unix.Write(out, buf); err != nil {
			return err
		}
	}
	return nil
}

// onCPU runs fn in a goroutine of its own, locked to a thread confined
// to cpu, and waits for it. The thread is never handed back to the
// runtime: it exits with that goroutine, so no other goroutine inherits
// the confinement.
func onCPU(cpu int, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread dies with this goroutine
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}
