package ctl

import (
	"errors"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs"
)

// blanks separate fields.
const blanks = " \t\r\n"

// Quote returns s as one field of a command line: s itself if it is not
// empty and holds no blank or quote, else s in single quotes with each quote
// doubled. Tokenize(Quote(s)) is []string{s} for every s.
func Quote(s string) string {
	if s != "" && !strings.ContainsAny(s, blanks+"'") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// Tokenize splits a command line into fields (see the package
// documentation). An unterminated quote is EINVAL.
func Tokenize(line string) ([]string, error) {
	var fields []string
	var f strings.Builder
	inField, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'':
			if i+1 < len(line) && line[i+1] == '\'' {
				f.WriteByte('\'')
				i++
			} else {
				quoted = false
			}
		case quoted:
			f.WriteByte(c)
		case c == '\'':
			quoted, inField = true, true
		case strings.IndexByte(blanks, c) >= 0:
			if inField {
				fields = append(fields, f.String())
				f.Reset()
				inField = false
			}
		default:
			f.WriteByte(c)
			inField = true
		}
	}
	if quoted {
		return nil, &cowfs.Error{Op: "ctl", Errno: syscall.EINVAL, Err: errors.New("unterminated quote")}
	}
	if inField {
		fields = append(fields, f.String())
	}
	return fields, nil
}
