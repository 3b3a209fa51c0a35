package fiberauth_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// argonBlock is the memory one argon2id run allocates at the default
// parameters (m=19456 KiB), freed only by the collector.
const argonBlock = 19456 * 1024

// hostHeapSize is the live heap of the "256MiB" host.
const hostHeapSize = 256 << 20

// BenchmarkLoginThroughput compares logins per second with bare argon2id
// hashes per second at the same concurrency, in one process, alternating
// blocks of the sides (in a rotated order each round) so that the
// machine's noise hits them alike:
//
//	bare     N goroutines, each running argon2id.CheckHash of the account's
//	         stored hash (the hash a login computes), no memory limit
//	login    N goroutines, each POSTing /auth/login through app.Handler()
//	         (memstore, limits off, default hash slots), under the memory
//	         limit a host sets (below): the target's side
//	free     the same logins without the memory limit, to tell fiberauth's
//	         own cost from the cost of keeping memory within the bound
//
// for N = 1, 32 and 200 clients, with no host heap and with a 256 MiB live
// host heap (hostHeap: an LRU-style cache of pointer-bearing entries, whose
// marking is what a collection costs), and, as a contrast at 32 clients, a
// 256 MiB heap of pointer-free buffers (newByteHeap). A block is N × k operations, k
// enough for about 64 operations; -benchtime 3x runs three blocks of each
// side.
//
// GC settings: GOGC as the process has it (default 100) for all sides. The
// login side runs under a memory limit as a host's GOMEMLIMIT would set it
// for fiberauth: the runtime's memory at the baseline (host heap included,
// free pages returned) + hash slots × argon2 memory + 64 MiB. Without one,
// each hash leaves 19 MiB of garbage that GOGC lets pile up to the size of
// the live heap before a collection, far past the bound. The bare side has
// no limit: its N unbounded hashes hold N × 19 MiB live (3.8 GiB at 200),
// which no limit sized for the slots fits, and a limit below the live heap
// has the collector run back to back; without one it runs at its fastest,
// which makes the ratio the strict one.
//
// It reports per side operations per second (…-ops/s), process CPU per
// operation (…-cpu-ms/op), the runtime's estimate of collector CPU per
// operation (…-gc-ms/op) and collections per operation (…-GCs/op); the
// ratios login ÷ bare (ratio, the target is ≥ 0.9) and free ÷ bare
// (ratio-free); the peak heap above the baseline during the login blocks
// (peak-MiB) against its bound (bound-MiB), and during the free blocks
// (free-peak-MiB).
//
//	go test -run '^$' -bench LoginThroughput -benchtime 3x -count 2 . | tee bench/login.txt
func BenchmarkLoginThroughput(b *testing.B) {
	for _, heap := range []string{"none", "256MiB"} {
		for _, clients := range []int{1, 32, 200} {
			b.Run(fmt.Sprintf("heap=%s/clients=%d", heap, clients), func(b *testing.B) {
				loginThroughput(b, clients, heap)
			})
		}
	}
	// The contrast: 256 MiB the collector marks without scanning.
	b.Run("heap=256MiB-bytes/clients=32", func(b *testing.B) { loginThroughput(b, 32, "256MiB-bytes") })
}

func loginThroughput(b *testing.B, clients int, heap string) {
	w := newBenchWorld(b)
	app := fiber.New()
	w.auth.Mount(app.Group("/auth"))
	h := app.Handler()
	u, err := w.store.UserByID(context.Background(), w.sub)
	if err != nil {
		b.Fatal(err)
	}
	stored := u.PasswordHash

	var host any
	switch heap {
	case "256MiB":
		host = newHostHeap(hostHeapSize)
	case "256MiB-bytes":
		host = newByteHeap(hostHeapSize)
	}
	bound := uint64(fiberauth.HashSlots(w.auth))*argonBlock + 64<<20
	// The baseline: the live heap (the host's included) and what the
	// runtime needs around it, with nothing free held back.
	debug.FreeOSMemory()
	baseHeap := heapObjects()
	hostLimit := int64(runtimeMemory() + bound)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))

	bare := func() error {
		ok, _, err := argon2id.CheckHash(goodPassword, stored)
		if err == nil && !ok {
			err = fmt.Errorf("the password does not match")
		}
		return err
	}
	login := loginCall(h)
	sides := [3]struct {
		name  string
		run   func() error
		limit int64
		sideStats
	}{{"bare", bare, math.MaxInt64, sideStats{}}, {"login", login, hostLimit, sideStats{}}, {"free", login, math.MaxInt64, sideStats{}}}
	k := max(1, 64/clients)
	b.ResetTimer()
	round := 0
	for b.Loop() {
		for j := range sides {
			s := &sides[(round+j)%len(sides)]
			debug.SetMemoryLimit(s.limit)
			runtime.GC() // each block starts without the last one's garbage
			if err := s.block(clients, k, baseHeap, s.run); err != nil {
				b.Fatal(err)
			}
		}
		round++
	}
	b.StopTimer()
	runtime.KeepAlive(host)
	for _, s := range sides {
		b.ReportMetric(s.rate(), s.name+"-ops/s")
		b.ReportMetric(s.cpuPerOp(), s.name+"-cpu-ms/op")
		b.ReportMetric(s.gcCPU*1e3/float64(s.ops), s.name+"-gc-ms/op")
		b.ReportMetric(float64(s.gcs)/float64(s.ops), s.name+"-GCs/op")
	}
	b.ReportMetric(sides[1].rate()/sides[0].rate(), "ratio")
	b.ReportMetric(sides[2].rate()/sides[0].rate(), "ratio-free")
	b.ReportMetric(float64(sides[1].peak)/(1<<20), "peak-MiB")
	b.ReportMetric(float64(bound)/(1<<20), "bound-MiB")
	b.ReportMetric(float64(sides[2].peak)/(1<<20), "free-peak-MiB")
	b.ReportMetric(0, "ns/op") // the blocks' wall time is in the rates
}

// loginCall is one login of ada@example.com through h, an app with the
// handlers mounted at /auth.
func loginCall(h fasthttp.RequestHandler) func() error {
	body := `{"email":"ada@example.com","password":"` + goodPassword + `"}`
	return func() error {
		if status, resp := serveOnce(h, "POST", "/auth/login", "", body); status != 200 {
			return fmt.Errorf("login: %d %s", status, resp)
		}
		return nil
	}
}

// sideStats adds up one side's blocks.
type sideStats struct {
	ops   int
	took  time.Duration
	peak  uint64 // heap objects above the baseline, at most
	gcs   uint64
	cpu   time.Duration // the process's, user and system
	gcCPU float64       // seconds, the runtime's estimate
}

func (s *sideStats) rate() float64 { return float64(s.ops) / s.took.Seconds() }

func (s *sideStats) cpuPerOp() float64 { return s.cpu.Seconds() * 1e3 / float64(s.ops) }

// block runs clients goroutines, each calling run k times, and records the
// wall time, the peak heap above base and the collections.
func (s *sideStats) block(clients, k int, base uint64, run func() error) error {
	peakHeap := sampleHeap(time.Millisecond)
	gc0, gcCPU0, cpu0 := gcCycles(), gcCPUSeconds(), processCPU()
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range k {
				if err := run(); err != nil {
					failed.Store(&err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.took += time.Since(start)
	if high := peakHeap(); high > base {
		s.peak = max(s.peak, high-base)
	}
	s.gcs += gcCycles() - gc0
	s.gcCPU += gcCPUSeconds() - gcCPU0
	s.cpu += processCPU() - cpu0
	s.ops += clients * k
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// runtimeMemory is what a memory limit is compared with: the memory the Go
// runtime has mapped, less what it has given back to the system.
func runtimeMemory() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// gcCPUSeconds is the runtime's estimate of the CPU time its collector has
// spent (mark assists, background marking, pauses and sweeping excluded).
func gcCPUSeconds() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64()
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// hostHeap is what a host application keeps live beside fiberauth: an
// LRU-style cache, a map from string keys to entries linked in a list, each
// with a byte value of 16 B to 2 KiB (a cached row or rendered fragment),
// a slice of tags and a few scalar fields. About 1 KiB an entry on average,
// so 256 MiB is roughly 250,000 entries and 900,000 objects, most of them
// holding pointers the collector must follow: marking it is what a
// collection costs the host.
type hostHeap struct {
	index      map[string]*hostEntry
	head, tail *hostEntry
}

type hostEntry struct {
	key        string
	value      []byte
	tags       []string
	prev, next *hostEntry
	expires    int64
	hits       int32
}

var hostTags = []string{"user", "order", "product", "page", "session", "feed", "search", "cart"}

func newHostHeap(size uint64) *hostHeap {
	runtime.GC()
	start := heapObjects()
	h := &hostHeap{index: make(map[string]*hostEntry)}
	seed := uint64(1)
	next := func() uint64 { // xorshift: deterministic sizes
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		return seed
	}
	for i := 0; ; i++ {
		if i%1024 == 0 && heapObjects()-start >= size {
			break
		}
		r := next()
		e := &hostEntry{
			key:     "cache:" + strconv.Itoa(i),
			value:   make([]byte, 16+r%2033),
			tags:    []string{hostTags[r>>20%8], hostTags[r>>24%8]},
			expires: int64(r >> 1),
		}
		h.index[e.key] = e
		if h.tail == nil {
			h.head = e
		} else {
			h.tail.next, e.prev = e, h.tail
		}
		h.tail = e
	}
	return h
}

// BenchmarkHashSlots compares logins at 32 clients with the hash slots at
// GOMAXPROCS and at 2 × GOMAXPROCS (the default), in alternating blocks, no
// memory limit: logins per second, process CPU per login and the peak heap
// above the baseline of each. Fewer slots hold fewer argon2 buffers and
// interleave fewer hashes on a CPU, but leave CPUs idle between hashes.
//
//	go test -run '^$' -bench HashSlots -benchtime 8x -count 2 . | tee bench/slots.txt
func BenchmarkHashSlots(b *testing.B) {
	procs := runtime.GOMAXPROCS(0)
	login := func(slots int) func() error {
		store := memstore.New()
		a, err := fiberauth.New(fiberauth.Config{Store: store, Secret: testSecret, Logger: slog.New(slog.DiscardHandler),
			HashConcurrency: slots, MaxLoginFailuresPerAccount: -1, MaxLoginFailuresPerIP: -1})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Password: goodPassword, Verified: true}); err != nil {
			b.Fatal(err)
		}
		app := fiber.New()
		a.Mount(app.Group("/auth"))
		return loginCall(app.Handler())
	}
	sides := [2]struct {
		name string
		run  func() error
		sideStats
	}{{"procs", login(procs), sideStats{}}, {"twice", login(2 * procs), sideStats{}}}
	runtime.GC()
	base := heapObjects()
	b.ResetTimer()
	round := 0
	for b.Loop() {
		for j := range sides {
			s := &sides[(round+j)%len(sides)]
			runtime.GC()
			if err := s.block(32, 2, base, s.run); err != nil {
				b.Fatal(err)
			}
		}
		round++
	}
	b.StopTimer()
	for _, s := range sides {
		b.ReportMetric(s.rate(), s.name+"-ops/s")
		b.ReportMetric(s.cpuPerOp(), s.name+"-cpu-ms/op")
		b.ReportMetric(float64(s.peak)/(1<<20), s.name+"-peak-MiB")
	}
	b.ReportMetric(sides[0].rate()/sides[1].rate(), "procs/twice")
	b.ReportMetric(0, "ns/op")
}

// newByteHeap is a host heap of pointer-free 1 MiB buffers (a buffer pool,
// a blob cache): the collector marks each without scanning it, so a
// collection costs next to nothing whatever their total.
func newByteHeap(size uint64) [][]byte {
	bufs := make([][]byte, size>>20)
	for i := range bufs {
		bufs[i] = make([]byte, 1<<20)
	}
	return bufs
}
