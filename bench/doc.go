// Package bench measures fednode against the goals of docs/PERFORMANCE.md,
// from outside, as an operator would see it: the real fednode binary in
// its own process, loaded over loopback by this test process, each figure
// beside its baseline measured in the same run (a plain net/http handler
// in a process of its own, a bare group-committed fsync loop), with the
// machine's load printed beside it, because these machines are shared.
//
//	make bench        # every goal, once
//	go test ./bench -run '^$' -bench Goal/CrossNode -benchtime 1x -v
//
// Each benchmark runs its measurement once whatever b.N is, prints one
// line per figure ("goal ... ratio ... target ... load ...") and reports
// the same numbers as benchmark metrics. It has no code of its own.
package bench
