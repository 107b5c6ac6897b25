#!/bin/sh
# "Deploys" the service: starts it in the background, logging to logs/app.log.
mkdir -p logs
nohup python3 serve.py 8080 >> logs/app.log 2>&1 &
echo "started on 127.0.0.1:8080 (pid $!)"
