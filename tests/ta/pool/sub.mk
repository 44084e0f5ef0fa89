global-incdirs-y += include ../conformance/include
srcs-y += ../conformance/conformance_ta.c
