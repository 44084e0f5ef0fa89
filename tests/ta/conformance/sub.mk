global-incdirs-y += include
srcs-y += conformance_ta.c
