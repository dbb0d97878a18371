// Command porcupine-bench times Porcupine (github.com/anishathalye/porcupine) on the JSONL
// histories that `LINCHECK_EXPORT_DIR=... cargo bench -p checker --bench lincheck` exports, with
// models equivalent to checker::lincheck's (same semantics of ok / fail / info, partitioned by
// key, with a state hash). See run.sh.
//
// Usage: porcupine-bench -model register|kv|stock [-initial N] [-min-time 5s] FILE...
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/anishathalye/porcupine"
)

const (
	opRead = iota
	opWrite
	opCas
	opAppend
	opReserve
	opRelease
)

const (
	outOk = iota
	outFail
	outInfo
)

type input struct {
	op  uint8
	key string
	a   string // written / appended value, cas from
	b   string // cas to
	q   int64  // stock quantity
}

type output struct {
	outcome uint8
	val     string // register / kv value read
	n       int64  // stock level read
}

type line struct {
	Process json.RawMessage  `json:"process"`
	Type    string           `json:"type"`
	F       string           `json:"f"`
	Key     *json.RawMessage `json:"key"`
	Value   json.RawMessage  `json:"value"`
}

var model = flag.String("model", "register", "register, kv or stock")
var initial = flag.Int64("initial", 10, "initial stock of every SKU (stock model)")
var minTime = flag.Duration("min-time", 5*time.Second, "keep repeating a check at least this long")

// canon is a register value's canonical JSON text, a kv value's string.
func canon(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		if *model == "kv" {
			return ""
		}
		return "null"
	}
	if *model == "kv" {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return string(raw)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		panic(err)
	}
	return buf.String()
}

func integer(raw json.RawMessage) int64 {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil {
		panic(fmt.Sprintf("not an integer: %s", raw))
	}
	return n
}

type open struct {
	in   input
	call int64
}

// load reads a file into Porcupine operations, leaving out what constrains nothing (failed
// reads, writes, appends, releases; reads without a result), exactly as checker::lincheck does.
func load(path string) []porcupine.Operation {
	f, err := os.Open(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pending := map[string]open{}
	var ops []porcupine.Operation
	n := int64(0)
	for sc.Scan() {
		n++
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			panic(fmt.Sprintf("%s:%d: %v", path, n, err))
		}
		proc := string(l.Process)
		if l.Type == "invoke" {
			in := input{key: ""}
			if l.Key != nil {
				var k string
				if json.Unmarshal(*l.Key, &k) != nil {
					k = string(*l.Key)
				}
				in.key = k
			}
			switch l.F {
			case "read", "get", "read-stock":
				in.op = opRead
			case "write", "put":
				in.op, in.a = opWrite, canon(l.Value)
			case "append":
				in.op, in.a = opAppend, canon(l.Value)
			case "cas":
				var pair []json.RawMessage
				if json.Unmarshal(l.Value, &pair) != nil || len(pair) != 2 {
					panic("cas value")
				}
				in.op, in.a, in.b = opCas, canon(pair[0]), canon(pair[1])
			case "reserve":
				in.op, in.q = opReserve, integer(l.Value)
			case "release":
				in.op, in.q = opRelease, integer(l.Value)
			default:
				panic("unknown f " + l.F)
			}
			pending[proc] = open{in, n}
			continue
		}
		o := pending[proc]
		delete(pending, proc)
		out := output{outcome: outInfo}
		switch l.Type {
		case "ok":
			out.outcome = outOk
		case "fail":
			out.outcome = outFail
		}
		if out.outcome == outOk && o.in.op == opRead {
			if *model == "stock" {
				out.n = integer(l.Value)
			} else {
				out.val = canon(l.Value)
			}
		}
		add(&ops, o, out, n)
	}
	for _, o := range pending {
		add(&ops, o, output{outcome: outInfo}, 0)
	}
	return ops
}

func add(ops *[]porcupine.Operation, o open, out output, ret int64) {
	switch {
	case o.in.op == opRead && out.outcome != outOk:
		return
	case out.outcome == outFail && (o.in.op == opWrite || o.in.op == opAppend || o.in.op == opRelease):
		return
	}
	if out.outcome == outInfo {
		ret = math.MaxInt64
	}
	*ops = append(*ops, porcupine.Operation{Input: o.in, Call: o.call, Output: out, Return: ret})
}

func step(state, in, out interface{}) (bool, interface{}) {
	i, o := in.(input), out.(output)
	if *model == "stock" {
		s := state.(int64)
		switch i.op {
		case opRead:
			return s == o.n, s
		case opRelease:
			return true, s + i.q
		case opReserve:
			switch o.outcome {
			case outOk:
				return s >= i.q, s - i.q
			case outFail:
				return s < i.q, s
			default:
				if s >= i.q {
					return true, s - i.q
				}
				return true, s
			}
		}
		panic("op")
	}
	s := state.(string)
	switch i.op {
	case opRead:
		return s == o.val, s
	case opWrite:
		return true, i.a
	case opAppend:
		return true, s + i.a
	case opCas:
		switch o.outcome {
		case outOk:
			return s == i.a, i.b
		case outFail:
			return s != i.a, s
		default:
			if s == i.a {
				return true, i.b
			}
			return true, s
		}
	}
	panic("op")
}

func hash(state interface{}) uint64 {
	switch s := state.(type) {
	case int64:
		return uint64(s) * 0x9e3779b97f4a7c15
	case string:
		h := uint64(14695981039346656037)
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		return h
	}
	return 0
}

func partition(history []porcupine.Operation) [][]porcupine.Operation {
	m := map[string][]porcupine.Operation{}
	for _, op := range history {
		k := op.Input.(input).key
		m[k] = append(m[k], op)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

func main() {
	flag.Parse()
	m := porcupine.Model{
		Partition: partition,
		Init: func() interface{} {
			switch *model {
			case "stock":
				return *initial
			case "kv":
				return ""
			}
			return "null"
		},
		Step: step,
		Hash: hash,
	}
	for _, path := range flag.Args() {
		ops := load(path)
		var times []float64
		var result porcupine.CheckResult
		started := time.Now()
		for len(times) < 3 || time.Since(started) < *minTime {
			t := time.Now()
			result = porcupine.CheckOperationsTimeout(m, ops, 10*time.Minute)
			times = append(times, time.Since(t).Seconds()*1e3)
			if len(times) >= 1000 {
				break
			}
		}
		sort.Float64s(times)
		sum := 0.0
		for _, t := range times {
			sum += t
		}
		fmt.Printf("%s\t%s\truns=%d\tmin_ms=%.3f\tmedian_ms=%.3f\tmean_ms=%.3f\n",
			path, result, len(times), times[0], times[len(times)/2], sum/float64(len(times)))
	}
}
