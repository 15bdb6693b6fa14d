// SPDX-License-Identifier: GPL-2.0
/*
 * kabi_vendor_b: a second vendor module that depends on kabi_vendor_a (it calls
 * kabi_vendor_a_hello) and imports one more kernel export (ktime_get), besides _printk.
 */
#include <linux/ktime.h>
#include <linux/module.h>

int kabi_vendor_a_hello(const char *who);

static int __init kabi_vendor_b_init(void)
{
	ktime_t t = ktime_get();
	int n = kabi_vendor_a_hello("kabi_vendor_b");

	pr_info("kabi_vendor_b: loaded at %lld ns, greeting #%d\n", ktime_to_ns(t), n);
	return 0;
}

static void __exit kabi_vendor_b_exit(void)
{
}

module_init(kabi_vendor_b_init);
module_exit(kabi_vendor_b_exit);

MODULE_LICENSE("GPL");
MODULE_ALIAS("kabi-vendor-b");
MODULE_DESCRIPTION("kabi test fixture: a vendor module using kabi_vendor_a");
MODULE_AUTHOR("kabi tests");
MODULE_VERSION("1.0");
