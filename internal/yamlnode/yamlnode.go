// Package yamlnode walks go.yaml.in/yaml/v3 node trees the way YAML reads
// them: aliases followed, merge keys (<<) expanded, null in every spelling of
// the YAML 1.2 core schema.
//
// The configuration and the rules are walked as node trees rather than
// decoded into structs, so that every problem keeps its line. This package
// finds the problems of a mapping's shape (keys that are not scalars,
// duplicate keys, merge keys that merge something other than mappings) and
// leaves the wording of messages to its callers.
package yamlnode

import (
	"strconv"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// maxAliasDepth bounds alias chains, so a tree built by hand with an alias
// cycle cannot loop forever.
const maxAliasDepth = 100

// Resolve follows a document with one node to that node, and aliases to the
// node they name. It returns nil for nil.
func Resolve(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && depth < maxAliasDepth; depth++ {
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return n
}

// IsNull reports whether n holds no value: nil, the zero Node, an empty
// document, or a scalar that the YAML 1.2 core schema reads as null (plain
// ~, null, Null, NULL or nothing at all, or any scalar tagged !!null). A
// quoted "null" is a string. Aliases are followed.
func IsNull(n *yaml.Node) bool {
	n = Resolve(n)
	switch {
	case n == nil || n.IsZero():
		return true
	case n.Kind == yaml.DocumentNode:
		return len(n.Content) == 0
	case n.Kind == yaml.ScalarNode:
		// ShortTag, not Tag: it also resolves the plain scalars of nodes
		// built in code, whose Tag is empty.
		return n.ShortTag() == "!!null"
	}
	return false
}

// Describe names what n holds, for a message: "nothing", "a mapping", "a
// list", or a scalar's text quoted (cut at 40 characters, so a value that
// is a pasted secret or a whole document does not flood the message).
func Describe(n *yaml.Node) string {
	switch {
	case IsNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if utf8.RuneCountInString(v) > 40 {
		v = string([]rune(v)[:40]) + "..."
	}
	return strconv.Quote(v)
}

// IsMerge reports whether k is a merge key: a plain <<, or a key tagged
// !!merge. A quoted "<<" is an ordinary key.
func IsMerge(k *yaml.Node) bool {
	k = Resolve(k)
	return k != nil && k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

// Pair is one key of a mapping with its value, both resolved.
type Pair struct {
	Key, Value *yaml.Node
	// Merged is true for a pair a merge key brought in; its nodes (and so
	// their lines) are those of the mapping it was merged from.
	Merged bool
}

// ProblemKind says what is wrong with a mapping.
type ProblemKind int

const (
	// KeyNotScalar is a key that is a mapping or a list.
	KeyNotScalar ProblemKind = iota + 1
	// DuplicateKey is a key that the mapping already has.
	DuplicateKey
	// BadMerge is a merge key whose value is neither a mapping nor a list of
	// mappings.
	BadMerge
)

// Problem is one problem of a mapping's shape.
type Problem struct {
	Kind ProblemKind
	// Key is the offending key; for BadMerge, the merge key.
	Key *yaml.Node
	// First is, for DuplicateKey, the key that Key repeats.
	First *yaml.Node
	// Merged is, for BadMerge, what was merged that is not a mapping.
	Merged *yaml.Node
}

// Line is the line of the offending key.
func (p Problem) Line() int { return p.Key.Line }

// Pairs returns the pairs of mapping n in document order, and the problems
// of its shape in the order they were found. A mapping's own keys win over
// merged ones, and for <<: [*a, *b] (or several merge keys) earlier
// mappings win over later ones, as YAML merge keys are defined; a merged
// pair takes the place of the merge key that brought it in. Merged mappings
// are expanded in turn (their own merge keys too), but their problems are
// not reported here: they are reported wherever that mapping is read as
// itself. A key that is not a scalar, or that repeats one of the mapping's
// own keys, is left out and reported; the first of duplicate keys counts.
//
// n is resolved first; Pairs returns nothing for a node that is not a
// mapping.
func Pairs(n *yaml.Node) ([]Pair, []Problem) {
	w := walker{report: true, visiting: map[*yaml.Node]bool{}}
	return w.pairs(Resolve(n)), w.problems
}

// Get returns the key and value of key in mapping n (merge keys expanded),
// or nils when n is not a mapping or has no such key.
func Get(n *yaml.Node, key string) (k, v *yaml.Node) {
	w := walker{visiting: map[*yaml.Node]bool{}}
	for _, p := range w.pairs(Resolve(n)) {
		if p.Key.Value == key {
			return p.Key, p.Value
		}
	}
	return nil, nil
}

type walker struct {
	report   bool // false inside merged mappings
	problems []Problem
	// visiting holds the mappings being expanded, so a mapping that merges
	// itself (possible through aliases) stops instead of recursing forever.
	visiting map[*yaml.Node]bool
}

func (w *walker) problem(p Problem) {
	if w.report {
		w.problems = append(w.problems, p)
	}
}

// pairs is Pairs, for a resolved node.
func (w *walker) pairs(n *yaml.Node) []Pair {
	if n == nil || n.Kind != yaml.MappingNode || w.visiting[n] {
		return nil
	}
	w.visiting[n] = true
	defer delete(w.visiting, n)

	own := ownKeys(n)
	var out []Pair
	merged := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := Resolve(n.Content[i]), Resolve(n.Content[i+1])
		switch {
		case k == nil || k.Kind != yaml.ScalarNode:
			if k == nil {
				k = n
			}
			w.problem(Problem{Kind: KeyNotScalar, Key: k})
		case IsMerge(k):
			for _, p := range w.merge(k, v) {
				if _, mine := own[p.Key.Value]; !mine && !merged[p.Key.Value] {
					merged[p.Key.Value] = true
					out = append(out, p)
				}
			}
		case own[k.Value] != i:
			w.problem(Problem{Kind: DuplicateKey, Key: k, First: Resolve(n.Content[own[k.Value]])})
		default:
			out = append(out, Pair{Key: k, Value: v})
		}
	}
	return out
}

// ownKeys maps each scalar key of mapping n (merge keys aside) to the index
// in n.Content of its first occurrence; by position rather than node, as two
// alias keys may be one node. Known up front, they let merged keys give way.
func ownKeys(n *yaml.Node) map[string]int {
	own := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := Resolve(n.Content[i]); k != nil && k.Kind == yaml.ScalarNode && !IsMerge(k) {
			if _, dup := own[k.Value]; !dup {
				own[k.Value] = i
			}
		}
	}
	return own
}

// merge returns the pairs that merge key k brings in with value v, in the
// order of precedence.
func (w *walker) merge(k, v *yaml.Node) []Pair {
	var srcs []*yaml.Node
	switch {
	case v != nil && v.Kind == yaml.MappingNode:
		srcs = []*yaml.Node{v}
	case v != nil && v.Kind == yaml.SequenceNode:
		for _, s := range v.Content {
			srcs = append(srcs, Resolve(s))
		}
	default:
		w.problem(Problem{Kind: BadMerge, Key: k, Merged: v})
		return nil
	}
	var out []Pair
	for _, s := range srcs {
		if s == nil || s.Kind != yaml.MappingNode {
			w.problem(Problem{Kind: BadMerge, Key: k, Merged: s})
			continue
		}
		inner := walker{visiting: w.visiting}
		for _, p := range inner.pairs(s) {
			p.Merged = true
			out = append(out, p)
		}
	}
	return out
}
