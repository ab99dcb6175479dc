#!/bin/sh
# Runs the orders example: the consumer and the producer as two separate programs
# that share only the objects they open by name. Exits with the consumer's status.
#   run.sh PATH/TO/orders_consumer PATH/TO/orders_producer [COUNT]
consumer=$1
producer=$2
count=${3:-10000}
"$consumer" "$count" &
cpid=$!
"$producer" "$count" || { kill "$cpid" 2>/dev/null; exit 1; }
wait "$cpid"
