package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DotEnv is the name of the env file read beside a topology file when no
// --env-file is given (docker compose's `.env`).
const DotEnv = ".env"

// maxEnvFileSize bounds an env file as MaxFileSize bounds a topology.
const maxEnvFileSize = 1 << 20

// EnvFileVar is one variable of an env file, with where it was set.
type EnvFileVar struct {
	Value string
	Pos   Pos // the variable's name
}

// ParseEnvFile reads an env file in docker compose's format, every problem
// at once with its position:
//
//	# a comment line; blank lines are skipped
//	NAME=value              the value trimmed; " #..." after it is a comment
//	export NAME=value       the shell's `export` is allowed and ignored
//	NAME="a \"b\"\n"        double quotes: \n \t \r \" \\ are escapes
//	NAME='literal $X'       single quotes: taken as written
//	NAME=                   an empty value
//
// Values are not interpolated (as vars are not): a `$` is a `$`. A later
// line of the same name wins. Names are those of ${VAR}: a letter or `_`,
// then letters, digits and `_`.
func ParseEnvFile(filename string, data []byte) (map[string]EnvFileVar, Diags) {
	vars := map[string]EnvFileVar{}
	var ds Diags
	errorf := func(line, col int, hint, format string, args ...any) {
		ds = append(ds, Diag{Pos: Pos{File: filename, Line: line, Col: col}, Msg: fmt.Sprintf(format, args...), Hint: hint})
	}
	for i, raw := range strings.Split(string(data), "\n") {
		line := i + 1
		text := strings.TrimSuffix(raw, "\r")
		trimmed := strings.TrimLeft(text, " \t")
		col := len(text) - len(trimmed) + 1
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(trimmed, "export "); ok {
			rest2 := strings.TrimLeft(rest, " \t")
			col += len(trimmed) - len(rest2)
			trimmed = rest2
		}
		name, value, ok := strings.Cut(trimmed, "=")
		if !ok {
			errorf(line, col, "write NAME=value", "env file line has no '=': %q", trimmed)
			continue
		}
		name = strings.TrimRight(name, " \t")
		if !varNameRE.MatchString(name) {
			errorf(line, col, "", "bad variable name %q in env file: use letters, digits and '_', not starting with a digit", name)
			continue
		}
		vcol := col + len(trimmed) - len(value)
		lead := len(value) - len(strings.TrimLeft(value, " \t"))
		value = value[lead:]
		vcol += lead
		v, err := envFileValue(value)
		if err != nil {
			errorf(line, vcol, "", "%v", err)
			continue
		}
		vars[name] = EnvFileVar{Value: v, Pos: Pos{File: filename, Line: line, Col: col}}
	}
	return vars, ds
}

// envFileValue is the value part of an env file line (after `=` and
// leading blanks).
func envFileValue(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	switch s[0] {
	case '\'':
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", errors.New("unterminated single-quoted value: a value ends on its line")
		}
		if err := afterQuote(s[end+2:]); err != nil {
			return "", err
		}
		return s[1 : end+1], nil
	case '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '"':
				if err := afterQuote(s[i+1:]); err != nil {
					return "", err
				}
				return b.String(), nil
			case c == '\\' && i+1 < len(s):
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case '"', '\\', '$':
					b.WriteByte(s[i])
				default:
					b.WriteByte('\\')
					b.WriteByte(s[i])
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("unterminated double-quoted value: a value ends on its line (write \\n for a newline)")
	}
	// Unquoted: a " #" starts a comment; blanks around the value go.
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "\t#"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimRight(s, " \t"), nil
}

// afterQuote checks what follows a closing quote: blanks, then nothing or a
// comment.
func afterQuote(rest string) error {
	rest = strings.TrimLeft(rest, " \t")
	if rest == "" || strings.HasPrefix(rest, "#") {
		return nil
	}
	return fmt.Errorf("unexpected %q after the closing quote", rest)
}

// ReadEnvFiles reads the env files of a load of topoFile: opts.EnvFiles in
// order (a later file wins), or, when none is given and opts.DotEnv is set,
// the .env beside the topology file if there is one. A missing --env-file
// is an error; a missing .env is not. Load calls it; `ztopo export` too, to
// give the pods the same variables.
func ReadEnvFiles(topoFile string, opts LoadOptions) (map[string]EnvFileVar, Diags) {
	files := opts.EnvFiles
	optional := false
	if len(files) == 0 {
		if !opts.DotEnv {
			return nil, nil
		}
		files = []string{filepath.Join(filepath.Dir(topoFile), DotEnv)}
		optional = true
	}
	out := map[string]EnvFileVar{}
	var ds Diags
	for _, path := range files {
		data, err := readEnvFile(path)
		if err != nil {
			if optional && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			ds = append(ds, Diag{Pos: Pos{File: path}, Msg: fmt.Sprintf("cannot read env file: %v", unwrapPathError(err))})
			continue
		}
		vars, fds := ParseEnvFile(path, data)
		ds = append(ds, fds...)
		for k, v := range vars {
			out[k] = v
		}
	}
	return out, ds
}

func readEnvFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, errors.New("is a directory")
	}
	if fi.Mode().IsRegular() && fi.Size() > maxEnvFileSize {
		return nil, fmt.Errorf("file is too large: %d bytes, more than %d (1 MiB)", fi.Size(), maxEnvFileSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEnvFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxEnvFileSize {
		return nil, fmt.Errorf("file is too large: more than %d bytes (1 MiB)", maxEnvFileSize)
	}
	return data, nil
}
