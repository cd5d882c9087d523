// Package forger's init writes reports of a compiled plugin and an OK
// verdict, sealed with guessed keys, on every descriptor the report channel
// could be, while the verifier is still compiling the plugin.
package forger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
)

func sealed(key []byte, seq int64, body string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(strconv.FormatInt(seq, 10) + "\n"))
	h.Write([]byte(body))
	line, _ := json.Marshal(map[string]any{"seq": seq, "body": json.RawMessage(body), "mac": hex.EncodeToString(h.Sum(nil))})
	return string(line)
}

func init() {
	var lines []string
	for _, key := range [][]byte{make([]byte, 32), []byte("00000000000000000000000000000000")} {
		for seq := int64(1); seq <= 4; seq++ {
			lines = append(lines, sealed(key, seq, `{"compiled":{"ok":true}}`), sealed(key, seq, `{"result":{"ok":true,"interpreter":"yaegi v0.16.1"}}`))
		}
	}
	for fd := 1; fd <= 11; fd++ {
		if f := os.NewFile(uintptr(fd), "forged"); f != nil {
			for _, l := range lines {
				_, _ = f.WriteString(l + "\n")
			}
		}
	}
}

// Touch is what the plugin calls.
func Touch() {}
