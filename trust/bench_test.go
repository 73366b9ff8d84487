package trust_test

import (
	"fmt"
	"testing"
	"time"

	"stoker.dev/stoker/trust"
)

// BenchmarkVerifySSH is one commit signature check against an
// allowed_signers set of over 1,000 lines: what the hub pays per refused or new head and per
// report commit with --require-signed-reports.
func BenchmarkVerifySSH(b *testing.B) {
	dir := b.TempDir()
	key, pub := sshKeygenB(b, dir, "k")
	msg := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nreport\n")
	sig := sshSignB(b, key, msg)
	// 20 other keys (ssh-keygen is slow), repeated to over 1,000 lines.
	var lines []byte
	for i := 0; i < 20; i++ {
		_, other := sshKeygenB(b, dir, fmt.Sprintf("other-%d", i))
		lines = append(lines, []byte(fmt.Sprintf("node-%d %s\n", i+2, other))...)
	}
	for len(lines) < 1000*100 {
		lines = append(lines, lines...)
	}
	lines = append(lines, []byte("node-1 "+pub+"\n")...)
	set, err := trust.Parse("signers", lines)
	if err != nil {
		b.Fatal(err)
	}
	s := trust.Signed{Signature: sig, Payload: msg, When: time.Now()}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := set.Verify(s, "node-1"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(set.SSH.Entries)), "entries")
}
