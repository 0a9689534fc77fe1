/* layout.c - prints the x86_64 layout of kernel ABI structs and the values of
 * constants that Amber's C# interop hard-codes, so tests can compare them.
 *
 * usage: layout            (no workdir, no ticks: prints and exits 0)
 * Output, one per line:   <struct>.size <bytes>  |  <struct>.<field> <offset>
 *                         (a field named "size" is printed as <struct>.field_size)
 *                         const <NAME> <value>    (signed decimal)
 * Structs newer than the build machine's kernel headers (linux-libc-dev 6.1)
 * are defined here by hand from the upstream uapi headers.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

/* linux/sched.h (5.7+) has it; 6.1 headers do, but keep a fallback. */
#ifndef CLONE_ARGS_SIZE_VER2
struct clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};
#endif

/* linux 6.7 uapi fs.h */
#ifndef PAGEMAP_SCAN
struct page_region { uint64_t start, end, categories; };
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
        category_mask, category_anyof_mask, return_mask;
};
#endif

/* linux 6.11 uapi fs.h */
#ifndef PROCMAP_QUERY
struct procmap_query {
    uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size,
        vma_offset, inode;
    uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
    uint64_t vma_name_addr, build_id_addr;
};
#endif

/* linux/ptrace.h (5.13); glibc names it struct __ptrace_rseq_configuration. */
struct ptrace_rseq_configuration {
    uint64_t rseq_abi_pointer;
    uint32_t rseq_abi_size, signature, flags, pad;
};

_Static_assert(sizeof(struct ptrace_rseq_configuration) == 24, "rseq config size");
_Static_assert(sizeof(struct __ptrace_rseq_configuration) == 24, "glibc rseq config size");

/* What rt_sigaction(2) really takes on x86_64 (not glibc's struct sigaction). */
struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
};

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define SZ(T) printf("%s %zu\n", #T ".size", sizeof(struct T))
#define SZT(T) printf("%s %zu\n", #T ".size", sizeof(T))
#define OFF(T, f) printf("%s %zu\n", #T "." #f, offsetof(struct T, f))
#define OFFT(T, f) printf("%s %zu\n", #T "." #f, offsetof(T, f))
/* A field literally named "size" would collide with <struct>.size (the sizeof). */
#define OFFSZ(T) printf("%s %zu\n", #T ".field_size", offsetof(struct T, size))
#define C(N) printf("const %s %lld\n", #N, (long long)(N))

int main(void) {
    SZ(user_regs_struct);
    OFF(user_regs_struct, r15); OFF(user_regs_struct, r14); OFF(user_regs_struct, r13);
    OFF(user_regs_struct, r12); OFF(user_regs_struct, rbp); OFF(user_regs_struct, rbx);
    OFF(user_regs_struct, r11); OFF(user_regs_struct, r10); OFF(user_regs_struct, r9);
    OFF(user_regs_struct, r8); OFF(user_regs_struct, rax); OFF(user_regs_struct, rcx);
    OFF(user_regs_struct, rdx); OFF(user_regs_struct, rsi); OFF(user_regs_struct, rdi);
    OFF(user_regs_struct, orig_rax); OFF(user_regs_struct, rip); OFF(user_regs_struct, cs);
    OFF(user_regs_struct, eflags); OFF(user_regs_struct, rsp); OFF(user_regs_struct, ss);
    OFF(user_regs_struct, fs_base); OFF(user_regs_struct, gs_base); OFF(user_regs_struct, ds);
    OFF(user_regs_struct, es); OFF(user_regs_struct, fs); OFF(user_regs_struct, gs);

    SZ(iovec); OFF(iovec, iov_base); OFF(iovec, iov_len);

    SZ(clone_args);
    OFF(clone_args, flags); OFF(clone_args, pidfd); OFF(clone_args, child_tid);
    OFF(clone_args, parent_tid); OFF(clone_args, exit_signal); OFF(clone_args, stack);
    OFF(clone_args, stack_size); OFF(clone_args, tls); OFF(clone_args, set_tid);
    OFF(clone_args, set_tid_size); OFF(clone_args, cgroup);

    SZ(prctl_mm_map);
    OFF(prctl_mm_map, start_code); OFF(prctl_mm_map, end_code); OFF(prctl_mm_map, start_data);
    OFF(prctl_mm_map, end_data); OFF(prctl_mm_map, start_brk); OFF(prctl_mm_map, brk);
    OFF(prctl_mm_map, start_stack); OFF(prctl_mm_map, arg_start); OFF(prctl_mm_map, arg_end);
    OFF(prctl_mm_map, env_start); OFF(prctl_mm_map, env_end); OFF(prctl_mm_map, auxv);
    OFF(prctl_mm_map, auxv_size); OFF(prctl_mm_map, exe_fd);

    SZT(stack_t); OFFT(stack_t, ss_sp); OFFT(stack_t, ss_flags); OFFT(stack_t, ss_size);

    SZ(kernel_sigaction);
    OFF(kernel_sigaction, handler); OFF(kernel_sigaction, flags);
    OFF(kernel_sigaction, restorer); OFF(kernel_sigaction, mask);

    SZT(siginfo_t);
    OFFT(siginfo_t, si_signo); OFFT(siginfo_t, si_errno); OFFT(siginfo_t, si_code);
    OFFT(siginfo_t, si_pid); OFFT(siginfo_t, si_uid); OFFT(siginfo_t, si_value);

    SZ(ptrace_rseq_configuration);
    OFF(ptrace_rseq_configuration, rseq_abi_pointer); OFF(ptrace_rseq_configuration, rseq_abi_size);
    OFF(ptrace_rseq_configuration, signature); OFF(ptrace_rseq_configuration, flags);

    SZ(pm_scan_arg);
    OFFSZ(pm_scan_arg); OFF(pm_scan_arg, flags); OFF(pm_scan_arg, start); OFF(pm_scan_arg, end);
    OFF(pm_scan_arg, walk_end); OFF(pm_scan_arg, vec); OFF(pm_scan_arg, vec_len);
    OFF(pm_scan_arg, max_pages); OFF(pm_scan_arg, category_inverted); OFF(pm_scan_arg, category_mask);
    OFF(pm_scan_arg, category_anyof_mask); OFF(pm_scan_arg, return_mask);
    SZ(page_region); OFF(page_region, start); OFF(page_region, end); OFF(page_region, categories);

    SZ(procmap_query);
    OFFSZ(procmap_query); OFF(procmap_query, query_flags); OFF(procmap_query, query_addr);
    OFF(procmap_query, vma_start); OFF(procmap_query, vma_end); OFF(procmap_query, vma_flags);
    OFF(procmap_query, vma_page_size); OFF(procmap_query, vma_offset); OFF(procmap_query, inode);
    OFF(procmap_query, dev_major); OFF(procmap_query, dev_minor); OFF(procmap_query, vma_name_size);
    OFF(procmap_query, build_id_size); OFF(procmap_query, vma_name_addr);
    OFF(procmap_query, build_id_addr);

    SZ(uffdio_api); OFF(uffdio_api, api); OFF(uffdio_api, features); OFF(uffdio_api, ioctls);
    SZ(uffdio_register); OFF(uffdio_register, range.start); OFF(uffdio_register, range.len);
    OFF(uffdio_register, mode); OFF(uffdio_register, ioctls);
    SZ(uffdio_writeprotect); OFF(uffdio_writeprotect, range.start);
    OFF(uffdio_writeprotect, range.len); OFF(uffdio_writeprotect, mode);

    C(PTRACE_SEIZE); C(PTRACE_INTERRUPT); C(PTRACE_GETREGSET); C(PTRACE_SETREGSET);
    C(PTRACE_GETSIGMASK); C(PTRACE_SETSIGMASK); C(PTRACE_PEEKSIGINFO); C(PTRACE_O_TRACECLONE);
    C(PTRACE_O_TRACEFORK); C(PTRACE_O_EXITKILL); C(PTRACE_EVENT_STOP); C(PTRACE_EVENT_FORK);
    C(PTRACE_GETEVENTMSG); C(PTRACE_SINGLESTEP); C(PTRACE_CONT); C(PTRACE_DETACH);
    C(PTRACE_GET_RSEQ_CONFIGURATION);
    C(NT_PRSTATUS); C(NT_X86_XSTATE); C(__WALL);
    C(PR_SET_MM); C(PR_SET_MM_MAP); C(PR_SET_MM_MAP_SIZE); C(PR_GET_TID_ADDRESS); C(PR_SET_NAME);
    C(PR_SET_CHILD_SUBREAPER);
    C(MAP_FIXED_NOREPLACE); C(MAP_GROWSDOWN); C(MADV_POPULATE_WRITE); C(MREMAP_MAYMOVE);
    C(MREMAP_FIXED);
    C(O_CLOEXEC); C(O_DIRECTORY); C(O_PATH); C(O_NOFOLLOW); C(AT_FDCWD);
    C(SYS_clone3); C(SYS_pidfd_open); C(SYS_pidfd_getfd); C(SYS_rseq); C(SYS_close_range);
    C(SYS_userfaultfd); C(SYS_process_vm_readv); C(SYS_rt_sigqueueinfo); C(SYS_rt_tgsigqueueinfo);
    C(SYS_set_robust_list); C(SYS_get_robust_list); C(SYS_set_tid_address); C(SYS_sigaltstack);
    C(SYS_rt_sigaction); C(SYS_prctl); C(SYS_mmap); C(SYS_munmap); C(SYS_mremap); C(SYS_mprotect);
    C(SYS_madvise); C(SYS_openat); C(SYS_close); C(SYS_dup3); C(SYS_lseek); C(SYS_pread64);
    C(SYS_chdir); C(SYS_umask); C(SYS_fcntl); C(SYS_getpid); C(SYS_brk); C(SYS_arch_prctl);
    C(SYS_kill); C(SYS_pause);
    /* SIGRTMIN as the kernel numbers it (32); glibc's SIGRTMIN macro is 34 at run time
       because glibc reserves 32 and 33 for itself. */
    printf("const SIGRTMIN %d\n", __SIGRTMIN);
    printf("const GLIBC_SIGRTMIN %d\n", SIGRTMIN);
    return 0;
}
