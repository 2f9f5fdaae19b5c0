package pager

import (
	"fmt"
	"strings"
	"time"
)

// Language is the language of the handsets' messages.
type Language string

// The languages.
const (
	English Language = "en"
	Italian Language = "it"
)

// Languages lists the languages with words for every alert kind.
var Languages = []Language{English, Italian}

type words struct {
	kinds   map[string]string
	acked   string
	cleared string
	minutes string // the unit after "+N" in a time_up
}

var vocabulary = map[Language]words{
	English: {
		kinds: map[string]string{
			"panic": "PANIC", "door_locked": "DOOR LOCKED", "time_up": "TIME UP", "sensor_fault": "SENSOR FAULT",
			"output_fault": "OUTPUT FAULT", "system_fault": "SYSTEM FAULT", "not_vacated": "NOT VACATED",
			"welfare_check": "WELFARE CHECK", "function_test_due": "TEST DUE", "line_drift": "LINE DRIFT",
		},
		acked: "ACK", cleared: "CLEARED", minutes: "min",
	},
	Italian: {
		kinds: map[string]string{
			"panic": "PANICO", "door_locked": "PORTA BLOCCATA", "time_up": "TEMPO SCADUTO", "sensor_fault": "GUASTO SENSORE",
			"output_fault": "GUASTO USCITA", "system_fault": "GUASTO SISTEMA", "not_vacated": "NON LIBERATA",
			"welfare_check": "CONTROLLO", "function_test_due": "VERIFICA DOVUTA", "line_drift": "DERIVA LINEA",
		},
		acked: "PRESO", cleared: "FINITO", minutes: "min",
	},
}

// Message is what the handset shows for a with reason at time at: the kind
// in the site's language, the room id and, as they apply, the panic point,
// the input, output or source at fault, and the minutes past the visit's
// end. Nothing else: no name, nothing about who is in the room. It is
// printable IA5 (letters outside it are written without their accents, or
// dropped) and at most max characters.
func (l Language) Message(a Alert, reason Reason, at time.Time, max int) string {
	w, ok := vocabulary[l]
	if !ok {
		w = vocabulary[English]
	}
	kind, ok := w.kinds[a.Kind]
	if !ok {
		kind = strings.ToUpper(strings.ReplaceAll(a.Kind, "_", " "))
	}
	parts := []string{}
	switch reason {
	case ReasonAcked:
		parts = append(parts, w.acked)
	case ReasonCleared:
		parts = append(parts, w.cleared)
	}
	parts = append(parts, kind, a.Room)
	for _, s := range []string{a.Point, a.Input, a.Output, a.Source} {
		if s != "" && s != "panic" && !contains(parts, s) {
			parts = append(parts, s)
		}
	}
	if a.Kind == "time_up" && reason != ReasonAcked && reason != ReasonCleared && !a.RaisedAt.IsZero() {
		if m := int(at.Sub(a.RaisedAt) / time.Minute); m > 0 {
			parts = append(parts, fmt.Sprintf("+%d %s", m, w.minutes))
		}
	}
	return clip(IA5(strings.Join(parts, " ")), max)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

var unaccent = strings.NewReplacer(
	"à", "a", "á", "a", "â", "a", "ä", "a", "è", "e", "é", "e", "ê", "e", "ë", "e",
	"ì", "i", "í", "i", "î", "i", "ï", "i", "ò", "o", "ó", "o", "ô", "o", "ö", "o",
	"ù", "u", "ú", "u", "û", "u", "ü", "u", "ç", "c", "ñ", "n",
	"À", "A", "Á", "A", "È", "E", "É", "E", "Ì", "I", "Ò", "O", "Ù", "U", "Ç", "C", "Ñ", "N",
)

// IA5 writes s in printable IA5 (0x20 to 0x7E): accents taken off the
// letters that have them, anything else outside it dropped.
func IA5(s string) string {
	s = unaccent.Replace(s)
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r <= 0x7E {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func clip(s string, max int) string {
	if max > 0 && len(s) > max {
		return strings.TrimRight(s[:max], " ")
	}
	return s
}
