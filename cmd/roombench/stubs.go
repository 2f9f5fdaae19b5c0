package main

import "context"

func runTimer(ctx context.Context, e *env) *SuiteResult     { return &SuiteResult{Error: "not yet"} }
func runFootprint(ctx context.Context, e *env) *SuiteResult { return &SuiteResult{Error: "not yet"} }
func runFleet(ctx context.Context, e *env) *SuiteResult     { return &SuiteResult{Error: "not yet"} }
func runOutage(ctx context.Context, e *env) *SuiteResult    { return &SuiteResult{Error: "not yet"} }
