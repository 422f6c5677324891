package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestGoBenchmarksExist: every benchmark `make bench` runs is declared in
// the package it is run in, so a benchmark moved or renamed breaks this
// test rather than leaving a hole in docs/benchmarks.md.
func TestGoBenchmarksExist(t *testing.T) {
	for _, g := range goBenchmarks(1) {
		dir := filepath.Join("../..", g.pkg)
		var src strings.Builder
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(b)
		}
		names := strings.Split(strings.Trim(g.pattern, "^$()"), "|")
		for _, n := range names {
			if !regexp.MustCompile(`(?m)^func ` + n + `\(b \*testing\.B\)`).MatchString(src.String()) {
				t.Errorf("make bench runs %s in %s, which does not declare it", n, g.pkg)
			}
		}
	}
}
