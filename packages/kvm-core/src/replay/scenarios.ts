/**
 * The built-in replay that `kvmsim replay` runs without a file: the memslot and dirty-log cases
 * of kvm-generic.md §8 that protocol v1 can express, each annotated with its case id and the
 * answer Linux 6.18.44 gave. Generated once by hand from the spec; edit it as data.
 */
export const MEMSLOT_ERRNO_SCENARIO: string = `# kvmsim built-in replay: the memslot and dirty-log cases of kvm-generic.md §8 that replay protocol v1
# can express, each tagged with its case id and the answer observed on Linux 6.18.44 x86_64
# (PVM backend, one address space, SMM off). \`case\` and \`expect\` are annotations the protocol ignores.
{"op":"create_vm","arch":"x86","expect":{"ret":0}}
# capabilities
{"case":"C1","op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS","expect":{"ret":32764}}
{"case":"C3","op":"check_extension","cap":"KVM_CAP_MULTI_ADDRESS_SPACE","expect":{"ret":0}}
{"case":"C5","op":"check_extension","cap":"KVM_CAP_READONLY_MEM","expect":{"ret":1}}
{"case":"C7","op":"check_extension","cap":"KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2","expect":{"ret":3}}
{"case":"C10","op":"check_extension","cap":"KVM_CAP_USER_MEMORY2","expect":{"ret":1}}
{"case":"C11","op":"check_extension","cap":"KVM_CAP_SYNC_MMU","expect":{"ret":1}}
# 16 MiB of host memory behind the slots
{"op":"mmap","addr":"0x7f0000000000","length":"0x1000000","expect":{"ret":0}}
# flags (v1)
{"case":"V3","op":"set_user_memory_region","slot":0,"flags":4,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V4","op":"set_user_memory_region","slot":0,"flags":8,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V6","op":"set_user_memory_region","slot":0,"flags":65536,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V8","op":"set_user_memory_region","slot":0,"flags":2,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0","memory_size":"0","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
# slot ids and address spaces
{"case":"V9","op":"set_user_memory_region","slot":32764,"flags":0,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V10","op":"set_user_memory_region","slot":32767,"flags":0,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V11","op":"set_user_memory_region","slot":65535,"flags":0,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V12","op":"set_user_memory_region","slot":32763,"flags":0,"guest_phys_addr":"0x10000000","memory_size":"0x1000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"case":"V13","op":"set_user_memory_region","slot":32763,"flags":0,"guest_phys_addr":"0x10000000","memory_size":"0","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"case":"V14","op":"set_user_memory_region","slot":65536,"flags":0,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V16","op":"set_user_memory_region","slot":4294901760,"flags":0,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
# sizes and addresses
{"case":"V17","op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0","memory_size":"0x1001","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V18","op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0","memory_size":"0x800","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V19","op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0x1800","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V20","op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000010","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V21","op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0xffff888000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V22","op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0","memory_size":"0x2000","userspace_addr":"0x7fffffffe000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V23","op":"set_user_memory_region","slot":1,"flags":0,"guest_phys_addr":"0x20000000","memory_size":"0x1000","userspace_addr":"0x100000000","expect":{"ret":0}}
{"op":"set_user_memory_region","slot":1,"flags":0,"guest_phys_addr":"0x20000000","memory_size":"0","userspace_addr":"0x100000000","expect":{"ret":0}}
{"case":"V24","op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0xfffffffffffff000","memory_size":"0x2000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V25","op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0","memory_size":"0x80000000000","userspace_addr":"0x100000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V26","op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0xffffffffff000","memory_size":"0x2000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V27","op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0xffffffffff000","memory_size":"0x1000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0xffffffffff000","memory_size":"0","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
# DELETE
{"case":"V28","op":"set_user_memory_region","slot":5,"flags":0,"guest_phys_addr":"0","memory_size":"0","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"op":"set_user_memory_region","slot":2,"flags":0,"guest_phys_addr":"0x40000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"case":"V30","op":"set_user_memory_region","slot":2,"flags":0,"guest_phys_addr":"0x1800","memory_size":"0","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V31","op":"set_user_memory_region","slot":2,"flags":0,"guest_phys_addr":"0x40000000","memory_size":"0","userspace_addr":"0x7f0000000800","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V32","op":"set_user_memory_region","slot":2,"flags":8,"guest_phys_addr":"0x40000000","memory_size":"0","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"V33","op":"set_user_memory_region","slot":2,"flags":1,"guest_phys_addr":"0x50000000","memory_size":"0","userspace_addr":"0x7f0000100000","expect":{"ret":0}}
{"case":"V34","op":"set_user_memory_region","slot":2,"flags":0,"guest_phys_addr":"0x40000000","memory_size":"0","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
# CREATE overlaps and neighbours (slot 10 at 0xc0000000, 2 MiB)
{"op":"set_user_memory_region","slot":10,"flags":0,"guest_phys_addr":"0xc0000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"case":"M2","op":"set_user_memory_region","slot":11,"flags":0,"guest_phys_addr":"0xc0000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-17,"errno":"EEXIST"}}
{"case":"M3","op":"set_user_memory_region","slot":11,"flags":0,"guest_phys_addr":"0xbff00000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-17,"errno":"EEXIST"}}
{"case":"M4","op":"set_user_memory_region","slot":11,"flags":0,"guest_phys_addr":"0xc0100000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-17,"errno":"EEXIST"}}
{"case":"M5","op":"set_user_memory_region","slot":11,"flags":0,"guest_phys_addr":"0xbff00000","memory_size":"0x400000","userspace_addr":"0x7f0000000000","expect":{"ret":-17,"errno":"EEXIST"}}
{"case":"M6","op":"set_user_memory_region","slot":11,"flags":0,"guest_phys_addr":"0xc0080000","memory_size":"0x1000","userspace_addr":"0x7f0000000000","expect":{"ret":-17,"errno":"EEXIST"}}
{"case":"M7","op":"set_user_memory_region","slot":11,"flags":0,"guest_phys_addr":"0xbfe00000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"case":"M8","op":"set_user_memory_region","slot":12,"flags":0,"guest_phys_addr":"0xc0200000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"case":"M9","op":"set_user_memory_region","slot":65546,"flags":0,"guest_phys_addr":"0xc0000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"M10","op":"set_user_memory_region","slot":13,"flags":0,"guest_phys_addr":"0x100000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
# modifying slot 10
{"case":"M11","op":"set_user_memory_region","slot":10,"flags":0,"guest_phys_addr":"0xc0000000","memory_size":"0x400000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"M12","op":"set_user_memory_region","slot":10,"flags":0,"guest_phys_addr":"0xc0000000","memory_size":"0x100000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"M13","op":"set_user_memory_region","slot":10,"flags":0,"guest_phys_addr":"0xc0000000","memory_size":"0x200000","userspace_addr":"0x7f0000200000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"M14","op":"set_user_memory_region","slot":10,"flags":2,"guest_phys_addr":"0xc0000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"M15","op":"set_user_memory_region","slot":10,"flags":0,"guest_phys_addr":"0xc0000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"case":"M16","op":"set_user_memory_region","slot":10,"flags":1,"guest_phys_addr":"0xc0000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"case":"M17","op":"set_user_memory_region","slot":10,"flags":0,"guest_phys_addr":"0xc0000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"case":"M18","op":"set_user_memory_region","slot":10,"flags":0,"guest_phys_addr":"0xbfe00000","memory_size":"0x400000","userspace_addr":"0x7f0000000000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"M19","op":"set_user_memory_region","slot":10,"flags":0,"guest_phys_addr":"0xc0200000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":-17,"errno":"EEXIST"}}
{"case":"M20","op":"set_user_memory_region","slot":10,"flags":0,"guest_phys_addr":"0xd0000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"case":"M21","op":"set_user_memory_region","slot":10,"flags":0,"guest_phys_addr":"0xd0001000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
{"case":"M22","op":"set_user_memory_region","slot":10,"flags":1,"guest_phys_addr":"0xe0000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}
# READONLY
{"case":"M25","op":"set_user_memory_region","slot":20,"flags":2,"guest_phys_addr":"0x200000000","memory_size":"0x200000","userspace_addr":"0x7f0000200000","expect":{"ret":0}}
{"case":"M26","op":"set_user_memory_region","slot":20,"flags":3,"guest_phys_addr":"0x200000000","memory_size":"0x200000","userspace_addr":"0x7f0000200000","expect":{"ret":0}}
{"case":"M27","op":"set_user_memory_region","slot":20,"flags":1,"guest_phys_addr":"0x200000000","memory_size":"0x200000","userspace_addr":"0x7f0000200000","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"M28","op":"set_user_memory_region","slot":20,"flags":2,"guest_phys_addr":"0x200000000","memory_size":"0x200000","userspace_addr":"0x7f0000200000","expect":{"ret":0}}
{"case":"M29","op":"set_user_memory_region","slot":20,"flags":2,"guest_phys_addr":"0x300000000","memory_size":"0x200000","userspace_addr":"0x7f0000200000","expect":{"ret":0}}
# KVM_GET_DIRTY_LOG errors
{"case":"D4","op":"get_dirty_log","slot":20,"expect":{"ret":-2,"errno":"ENOENT"}}
{"case":"D5","op":"get_dirty_log","slot":30,"expect":{"ret":-2,"errno":"ENOENT"}}
{"case":"D6","op":"get_dirty_log","slot":32764,"expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"D7","op":"get_dirty_log","slot":65536,"expect":{"ret":-22,"errno":"EINVAL"}}
# slot 21: 100 pages with dirty logging, manual protect off
{"op":"set_user_memory_region","slot":21,"flags":1,"guest_phys_addr":"0x400000000","memory_size":"0x64000","userspace_addr":"0x7f0000400000","expect":{"ret":0}}
{"case":"D3b","op":"get_dirty_log","slot":21,"expect":{"ret":0,"bitmap":"00000000000000000000000000000000"}}
{"case":"D9","op":"clear_dirty_log","slot":21,"first_page":0,"num_pages":64,"bitmap":"ffffffffffffffff","expect":{"ret":0}}
# KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2
{"case":"D10","op":"enable_cap","cap":"KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2","flags":1,"args":[1],"expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"D11","op":"enable_cap","cap":"KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2","args":[2],"expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"D12","op":"enable_cap","cap":"KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2","args":[4],"expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"D13","op":"enable_cap","cap":"KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2","args":[5],"expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"D14","op":"enable_cap","cap":"KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2","args":[3],"expect":{"ret":0}}
# slot 22: 100 pages created with INITIALLY_SET: all ones; a manual GET does not clear
{"op":"set_user_memory_region","slot":22,"flags":1,"guest_phys_addr":"0x500000000","memory_size":"0x64000","userspace_addr":"0x7f0000500000","expect":{"ret":0}}
{"case":"D16a","op":"get_dirty_log","slot":22,"expect":{"ret":0,"bitmap":"ffffffffffffffffffffffff0f000000"}}
{"case":"D17","op":"get_dirty_log","slot":22,"expect":{"ret":0,"bitmap":"ffffffffffffffffffffffff0f000000"}}
# KVM_CLEAR_DIRTY_LOG rules
{"case":"D18","op":"clear_dirty_log","slot":22,"first_page":1,"num_pages":64,"bitmap":"ffffffffffffffff","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"D19","op":"clear_dirty_log","slot":30,"first_page":1,"num_pages":64,"bitmap":"ffffffffffffffff","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"D20","op":"clear_dirty_log","slot":30,"first_page":0,"num_pages":64,"bitmap":"ffffffffffffffff","expect":{"ret":-2,"errno":"ENOENT"}}
{"case":"D21","op":"clear_dirty_log","slot":20,"first_page":0,"num_pages":64,"bitmap":"ffffffffffffffff","expect":{"ret":-2,"errno":"ENOENT"}}
{"case":"D22","op":"clear_dirty_log","slot":22,"first_page":0,"num_pages":10,"bitmap":"ffffffffffffffff","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"D23","op":"clear_dirty_log","slot":22,"first_page":64,"num_pages":37,"bitmap":"ffffffffffffffff","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"D24","op":"clear_dirty_log","slot":22,"first_page":128,"num_pages":0,"expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"D25","op":"clear_dirty_log","slot":22,"first_page":0,"num_pages":101,"bitmap":"ffffffffffffffffffffffffffffffff","expect":{"ret":-22,"errno":"EINVAL"}}
{"case":"D26","op":"clear_dirty_log","slot":22,"first_page":0,"num_pages":0,"bitmap":"","expect":{"ret":0}}
{"case":"D27","op":"clear_dirty_log","slot":22,"first_page":0,"num_pages":0,"expect":{"ret":0}}
{"case":"D28","op":"clear_dirty_log","slot":22,"first_page":0,"num_pages":64,"expect":{"ret":-14,"errno":"EFAULT"}}
{"op":"set_user_memory_region","slot":23,"flags":1,"guest_phys_addr":"0x600000000","memory_size":"0x80000","userspace_addr":"0x7f0000600000","expect":{"ret":0}}
{"case":"D32","op":"clear_dirty_log","slot":23,"first_page":128,"num_pages":0,"expect":{"ret":0}}
{"case":"D29","op":"clear_dirty_log","slot":22,"first_page":64,"num_pages":36,"bitmap":"ffffffffffffffff","expect":{"ret":0}}
{"case":"D29a","op":"get_dirty_log","slot":22,"expect":{"ret":0,"bitmap":"ffffffffffffffff0000000000000000"}}
{"case":"D30","op":"clear_dirty_log","slot":22,"first_page":0,"num_pages":64,"bitmap":"0f00000000000000","expect":{"ret":0}}
{"case":"D30a","op":"get_dirty_log","slot":22,"expect":{"ret":0,"bitmap":"f0ffffffffffffff0000000000000000"}}
# MOVE keeps the bitmap; logging off frees it; on again gives a fresh (INITIALLY_SET) one
{"case":"D33","op":"set_user_memory_region","slot":22,"flags":1,"guest_phys_addr":"0x700000000","memory_size":"0x64000","userspace_addr":"0x7f0000500000","expect":{"ret":0}}
{"case":"D33a","op":"get_dirty_log","slot":22,"expect":{"ret":0,"bitmap":"f0ffffffffffffff0000000000000000"}}
{"case":"D34","op":"set_user_memory_region","slot":22,"flags":0,"guest_phys_addr":"0x700000000","memory_size":"0x64000","userspace_addr":"0x7f0000500000","expect":{"ret":0}}
{"case":"D35","op":"get_dirty_log","slot":22,"expect":{"ret":-2,"errno":"ENOENT"}}
{"case":"D36","op":"set_user_memory_region","slot":22,"flags":1,"guest_phys_addr":"0x700000000","memory_size":"0x64000","userspace_addr":"0x7f0000500000","expect":{"ret":0}}
{"case":"D36a","op":"get_dirty_log","slot":22,"expect":{"ret":0,"bitmap":"ffffffffffffffffffffffff0f000000"}}
# manual protect off again: GET returns and clears
{"case":"D37","op":"enable_cap","cap":"KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2","args":[0],"expect":{"ret":0}}
{"case":"D38","op":"get_dirty_log","slot":22,"expect":{"ret":0,"bitmap":"ffffffffffffffffffffffff0f000000"}}
{"case":"D38a","op":"get_dirty_log","slot":22,"expect":{"ret":0,"bitmap":"00000000000000000000000000000000"}}
{"case":"D39","op":"enable_cap","cap":"KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2","args":[1],"expect":{"ret":0}}
# malformed lines are answered EINVAL with the line and field, and processing continues
{"op":"set_user_memory_region","slot":"zero","memory_size":0}
{"op":"no_such_op"}
`;
