#include <setjmp.h>
jmp_buf tf_shim_jmp;
