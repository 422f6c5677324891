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

// TestDiskCPU: the one-CPU round runs on the CPU that took most of the
// block devices' interrupts, whatever the driver, and on none when no
// disk's queue is listed.
func TestDiskCPU(t *testing.T) {
	virtio := `           CPU0       CPU1       
 26:          0         14  IO-APIC   4-edge      ttyS0
 36:          0   38795815 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
 39:      14407          0 PCI-MSIX-0000:00:03.0   2-edge      virtio2-output.0
 41:      32877          0 PCI-MSIX-0000:00:04.0   1-edge      virtio3-rx
LOC:   68418632   66600262   Local timer interrupts
`
	nvme := `            CPU0       CPU1       CPU2       CPU3
 120:         10          0          0          0  IR-PCI-MSI 1048576-edge      nvme0q0
 121:        500          0          0          0  IR-PCI-MSI 1048577-edge      nvme0q1
 122:          0          0       9000          0  IR-PCI-MSI 1048578-edge      nvme0q2
 123:          0          0          0         70  IR-PCI-MSI 1048579-edge      nvme0q3
 130:      99999          0          0          0  IR-PCI-MSI 2048000-edge      eth0-TxRx-0
`
	none := `           CPU0       CPU1
 41:      32877          0 PCI-MSIX-0000:00:04.0   1-edge      virtio3-rx
`
	for _, c := range []struct {
		name, text string
		cpu        int
		ok         bool
	}{{"virtio", virtio, 1, true}, {"nvme", nvme, 2, true}, {"none", none, 0, false}, {"empty", "", 0, false}} {
		cpu, ok := diskCPU(c.text)
		if cpu != c.cpu || ok != c.ok {
			t.Errorf("%s: diskCPU = %d, %v; want %d, %v", c.name, cpu, ok, c.cpu, c.ok)
		}
	}
}
