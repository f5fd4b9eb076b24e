/* Minimal Cortex-M4 start-up for QEMU's mps2-an386: vector table, reset handler (copy .data, zero .bss,
 * enable the FPU), newlib semihosting, then main; main's return value is QEMU's exit status. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
extern void initialise_monitor_handles(void);
void Reset_Handler(void);
void Default_Handler(void);

void Default_Handler(void)
{
    exit(99); /* a fault: report it rather than hang */
}

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    /* CPACR: full access to CP10 and CP11 (the FPU), before any floating-point instruction */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm volatile("dsb\n isb");
    initialise_monitor_handles();
    exit(main());
}

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler,
    Default_Handler,
};

/* newlib's exit() runs the fini array and calls _fini; without crt files these are ours (nothing to do) */
void _init(void);
void _fini(void);
void _init(void) {}
void _fini(void) {}
