package keyring

import (
	"encoding/json"
	"fmt"
)

func fmtAll(s Secret) string {
	j, _ := json.Marshal(struct{ S Secret }{s})
	return fmt.Sprintf("%v %+v %#v %s %q %x %d", s, s, s, s, s, s, s) + string(j)
}
