#!/bin/sh
# Makes a throwaway PKI for the tls+tcp:// tests in directory $1 (created): a CA, a
# server certificate for 127.0.0.1 / localhost and a client certificate signed by it,
# and a second CA with a client certificate of its own (which the first CA's server
# must refuse). P-256 keys, valid one day. Nothing of it is ever kept.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { # name
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 1 -subj "/CN=shoal test $1"
}
cert() { # name ca san
    key "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1"
    printf 'subjectAltName=%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
        -out "$1.pem" -days 1 -extfile "$1.ext" 2>/dev/null
}
ca ca
ca other-ca
cert server ca "DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1"
cert client ca "DNS:client"
cert stranger other-ca "DNS:stranger"
