package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat; 100 on
// every Linux this runs on.
const clockTicks = 100

// procSample is one reading of a process's resident memory and CPU time.
type procSample struct {
	at  time.Time
	rss int64         // bytes (VmRSS)
	cpu time.Duration // user + system
}

// readProc reads /proc/PID/status (VmRSS) and /proc/PID/stat (utime, stime).
func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return s, fmt.Errorf("VmRSS %q: %w", rest, err)
				}
				s.rss = kb << 10
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	s.cpu = time.Duration(ut+st) * time.Second / clockTicks
	return s, nil
}

// cpuShare is the CPU used between two samples, in cores (1.0 = one core
// busy the whole time).
func cpuShare(a, b procSample) float64 {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return 0
	}
	return float64(b.cpu-a.cpu) / float64(wall)
}

// machineSample is the whole machine's CPU time from /proc/stat.
type machineSample struct {
	at          time.Time
	busy, steal time.Duration // all CPUs: user+nice+system+irq+softirq; steal
}

func readMachine() (machineSample, error) {
	m := machineSample{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return m, fmt.Errorf("/proc/stat: %q", line)
	}
	tick := func(i int) time.Duration {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(v) * time.Second / clockTicks
	}
	m.busy = tick(1) + tick(2) + tick(3) + tick(6) + tick(7)
	m.steal = tick(8)
	return m, nil
}

// machineShare is the CPU the whole machine used between a and b, in
// cores, and the time stolen by the hypervisor, in cores.
func machineShare(a, b machineSample) (busy, steal float64) {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return 0, 0
	}
	return float64(b.busy-a.busy) / float64(wall), float64(b.steal-a.steal) / float64(wall)
}

// otherLoad samples, every second, how much CPU the machine spent outside
// the given processes (other users of a shared machine), and keeps the
// highest one-second value: a burst of outside load explains a latency
// tail that the average hides.
type otherLoad struct {
	stop func() float64 // ends sampling; returns the peak, in cores
}

func startOtherLoad(pids ...int) *otherLoad {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan float64, 1)
	go func() {
		peak := 0.0
		defer func() { done <- peak }()
		read := func() (machineSample, procSet, bool) {
			m, err := readMachine()
			if err != nil {
				return m, nil, false
			}
			return m, readSet(pids), true
		}
		prevM, prevOwn, ok := read()
		if !ok {
			return
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			m, own, ok := read()
			if !ok {
				return
			}
			wall := m.at.Sub(prevM.at)
			if wall > 0 {
				// Only the processes read both times: one killed in
				// between (a cluster run's SIGKILL) would look like
				// CPU given back.
				var ownCPU time.Duration
				for pid, b := range own {
					if a, ok := prevOwn[pid]; ok {
						ownCPU += b.cpu - a.cpu
					}
				}
				other := float64((m.busy-prevM.busy)-ownCPU) / float64(wall)
				peak = max(peak, other)
			}
			prevM, prevOwn = m, own
		}
	}()
	return &otherLoad{stop: func() float64 { cancel(); return <-done }}
}

// readProcs is readProc added up over pids (RSS and CPU), skipping the
// processes that are gone; an error when none could be read.
func readProcs(pids []int) (procSample, error) {
	sum := procSample{at: time.Now()}
	var err error
	ok := false
	for _, pid := range pids {
		p, e := readProc(pid)
		if e != nil {
			err = e
			continue
		}
		ok = true
		sum.rss += p.rss
		sum.cpu += p.cpu
	}
	if !ok {
		return sum, err
	}
	return sum, nil
}

// procSet is a reading of several processes, by pid (those that could be
// read).
type procSet map[int]procSample

func readSet(pids []int) procSet {
	s := procSet{}
	for _, pid := range pids {
		if p, err := readProc(pid); err == nil {
			s[pid] = p
		}
	}
	return s
}

// shareSet is cpuShare added up over the processes read both times (a
// process killed in between is left out).
func shareSet(a, b procSet) float64 {
	var sum float64
	for pid, pa := range a {
		if pb, ok := b[pid]; ok {
			sum += cpuShare(pa, pb)
		}
	}
	return sum
}
