package keyring

import gokeyring "github.com/zalando/go-keyring"

func osGet(service, label string) (string, error) { return gokeyring.Get(service, label) }
