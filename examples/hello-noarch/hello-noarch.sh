#!/bin/sh
# Sample program of the hello-noarch package (koji-adjutant examples).
echo "Hello from hello-noarch${1:+, $1}!"
